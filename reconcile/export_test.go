package reconcile

// The frame helpers of the internal tests, for the external ones.
var (
	DelimitedFrames = delimitedFrames
	ParseFrames     = parseFrames
)

// SetMaxNodeEntries sets the node size bound for a test and restores it
// when the test ends; such a test must not run in parallel.
func SetMaxNodeEntries(t interface{ Cleanup(func()) }, n int) {
	old := maxNodeEntries
	maxNodeEntries = n
	t.Cleanup(func() { maxNodeEntries = old })
}

// Level is the level of a key: the height up to which it closes nodes.
var Level = level
