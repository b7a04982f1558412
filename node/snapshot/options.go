package snapshot

import (
	"errors"
	"fmt"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Defaults and bounds of the options.
const (
	// DefaultMaxMessageSize is the largest message, as the size of its
	// pb.Message encoding, that a writer accepts and a reader returns:
	// 150 KiB, the node's default maximum message size (as Waku relays
	// use), so that anything a node can store it can export and import.
	DefaultMaxMessageSize = 150 << 10

	// DefaultMaxBatchSize is the uncompressed size at which a writer cuts
	// a batch, and the largest batch a reader accepts: 1 MiB.
	DefaultMaxBatchSize = 1 << 20

	// MaxBatchMessages is the most messages one batch may hold, whatever
	// its size. Part of the format: it bounds the memory of a batch of
	// tiny messages, which costs far more decoded than encoded.
	MaxBatchMessages = 1 << 14

	// DefaultCompressionLevel is the zstd level of a writer: the
	// reference library's default (3), a good ratio at export speed.
	DefaultCompressionLevel = 3

	minBatchSize = 1 << 10
	maxBatchSize = 64 << 20
)

// Option configures NewWriter or NewReader. Options that concern one side
// only say so and are ignored by the other.
type Option func(*config) error

type config struct {
	maxMessage int
	maxBatch   int
	level      zstd.EncoderLevel
	created    time.Time
}

var errOption = errors.New("snapshot: option out of range")

// newConfig applies the options over the defaults, in order.
func newConfig(opts []Option) (config, error) {
	c := config{
		maxMessage: DefaultMaxMessageSize,
		maxBatch:   DefaultMaxBatchSize,
		level:      zstd.EncoderLevelFromZstd(DefaultCompressionLevel),
	}
	for _, o := range opts {
		if err := o(&c); err != nil {
			return c, err
		}
	}
	// The raw encoding of a message is shorter than its pb.Message
	// encoding (no topics, no tags), so a batch limit at least the
	// message limit always fits a message into an empty batch.
	if c.maxMessage > c.maxBatch {
		return c, fmt.Errorf("%w: max message size %d above max batch size %d", errOption, c.maxMessage, c.maxBatch)
	}
	return c, nil
}

// WithMaxMessageSize sets the largest message accepted, as the size of its
// pb.Message encoding (reconcile.Message.ToPB().Size()): a writer refuses
// a larger message with ErrTooLarge, a reader fails on one. It must not
// exceed the max batch size. Default DefaultMaxMessageSize.
func WithMaxMessageSize(n int) Option {
	return func(c *config) error {
		if n < 1 || n > maxBatchSize {
			return fmt.Errorf("%w: max message size %d", errOption, n)
		}
		c.maxMessage = n
		return nil
	}
}

// WithMaxBatchSize sets the uncompressed size of a batch: a writer cuts
// batches at most this large and records the limit in the header; a
// reader refuses a file whose header records a larger one, and never
// decompresses more than this per batch whatever the file claims.
// Between 1 KiB and 64 MiB, and at least the max message size (so lower
// that first). Default DefaultMaxBatchSize.
//
// A reader holds, per batch, the compressed payload (reused), the raw
// content and the batch's []reconcile.Message: for tiny messages the last
// outweighs the content, which MaxBatchMessages bounds.
func WithMaxBatchSize(n int) Option {
	return func(c *config) error {
		if n < minBatchSize || n > maxBatchSize {
			return fmt.Errorf("%w: max batch size %d", errOption, n)
		}
		c.maxBatch = n
		return nil
	}
}

// WithCompressionLevel sets the writer's zstd level, 1 (fastest) to 22
// (smallest), mapped to the nearest level the zstd package implements.
// At any level, batches that do not shrink are stored raw (doc.go).
// Writer only. Default DefaultCompressionLevel.
func WithCompressionLevel(level int) Option {
	return func(c *config) error {
		if level < 1 || level > 22 {
			return fmt.Errorf("%w: compression level %d", errOption, level)
		}
		c.level = zstd.EncoderLevelFromZstd(level)
		return nil
	}
}

// WithCreated sets the creation time the writer records, so that the same
// messages give the same bytes (reproducible snapshots, tests). It must
// be representable in int64 Unix nanoseconds (years 1678 to 2261). Writer
// only. Default: the time NewWriter is called.
func WithCreated(t time.Time) Option {
	return func(c *config) error {
		if y := t.Year(); y < 1678 || y > 2261 {
			return fmt.Errorf("%w: creation time %v", errOption, t)
		}
		c.created = t
		return nil
	}
}
