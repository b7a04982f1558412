package reconcile

// The frame helpers of the internal tests, for the external ones.
var (
	DelimitedFrames = delimitedFrames
	ParseFrames     = parseFrames
)
