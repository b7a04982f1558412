package waku

import (
	"errors"
	"log/slog"
	"time"
)

// metadataConfig holds the options of NewMetadataService.
type metadataConfig struct {
	timeout time.Duration
	logger  *slog.Logger
}

// MetadataOption configures NewMetadataService.
type MetadataOption func(*metadataConfig) error

// WithMetadataTimeout bounds how long the service gives one exchange
// before it resets the stream. Default DefaultMetadataTimeout.
func WithMetadataTimeout(d time.Duration) MetadataOption {
	return func(c *metadataConfig) error {
		if d <= 0 {
			return errors.New("waku: metadata timeout must be positive")
		}
		c.timeout = d
		return nil
	}
}

// WithMetadataLogger replaces the service's logger. Default the
// "storesync/waku" subsystem logger, which GOLOG_LOG_LEVEL controls.
func WithMetadataLogger(l *slog.Logger) MetadataOption {
	return func(c *metadataConfig) error {
		if l == nil {
			return errors.New("waku: nil logger")
		}
		c.logger = l
		return nil
	}
}
