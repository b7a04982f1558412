package waku

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidContentTopic is the error, wrapped with the reason, of a
// content topic that is not /{application}/{version}/{name}/{encoding}
// with an optional generation prefix /{generation}/ of 0.
var ErrInvalidContentTopic = errors.New("waku: invalid content topic")

// ContentTopic is a parsed content topic (23/WAKU2-TOPICS):
// /{application}/{version}/{name}/{encoding}, or
// /{generation}/{application}/{version}/{name}/{encoding}.
type ContentTopic struct {
	// Generation is the network generation the topic names. Only
	// generation 0 exists, the one a topic without the prefix is in.
	Generation int
	// WithGeneration is whether the topic spelt its generation out.
	WithGeneration bool
	// Application, Version, Name and Encoding are the topic's fields,
	// none empty and none containing a slash.
	Application, Version, Name, Encoding string
}

// ParseContentTopic parses and checks a content topic. A topic whose
// shape is wrong, with an empty field, or whose generation is not 0
// gives an error wrapping ErrInvalidContentTopic.
func ParseContentTopic(s string) (ContentTopic, error) {
	if !strings.HasPrefix(s, "/") {
		return ContentTopic{}, invalidContentTopic(s, "does not start with a slash")
	}
	parts := strings.Split(s[1:], "/")
	var c ContentTopic
	switch len(parts) {
	case 4:
	case 5:
		// Generation 0 is the only one: a strict "0" keeps one spelling
		// per topic, so that String gives back what was parsed.
		if parts[0] != "0" {
			return ContentTopic{}, invalidContentTopic(s, fmt.Sprintf("generation %q: only 0 is supported", parts[0]))
		}
		c.WithGeneration = true
		parts = parts[1:]
	default:
		return ContentTopic{}, invalidContentTopic(s, fmt.Sprintf("%d fields, want 4 or 5", len(parts)))
	}
	for i, name := range [...]string{"application", "version", "name", "encoding"} {
		if parts[i] == "" {
			return ContentTopic{}, invalidContentTopic(s, "empty "+name)
		}
	}
	c.Application, c.Version, c.Name, c.Encoding = parts[0], parts[1], parts[2], parts[3]
	return c, nil
}

// String returns the topic in its wire form, with the generation prefix
// when WithGeneration is set.
func (c ContentTopic) String() string {
	s := "/" + c.Application + "/" + c.Version + "/" + c.Name + "/" + c.Encoding
	if c.WithGeneration {
		return fmt.Sprintf("/%d%s", c.Generation, s)
	}
	return s
}

func invalidContentTopic(s, why string) error {
	return fmt.Errorf("%w %q: %s", ErrInvalidContentTopic, s, why)
}
