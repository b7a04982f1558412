package protocol

// track registers a goroutine of the service with its WaitGroup, unless
// the service is closed; the returned func marks it done.
func (s *Service) track() (done func(), ok bool) {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.ctx.Err() != nil {
		return nil, false
	}
	s.wg.Add(1)
	return s.wg.Done, true
}
