package protocol

import "testing"

// TestCatchUpFuzzCorpus writes the catch-up fuzz targets' seed corpus
// under testdata/fuzz when run with -update-catchup-corpus, and otherwise
// checks that every seed is there. The seeds come from the code itself
// (what the server sends, what the client asks), so regenerate them
// after a wire change.
func TestCatchUpFuzzCorpus(t *testing.T) {
	fuzzWriteCorpus(t, "FuzzCatchUpClient", fuzzClientSeeds(t))
	fuzzWriteCorpus(t, "FuzzCutRanges", fuzzSummarySeeds(t))
	fuzzWriteCorpus(t, "FuzzServeCatchUp", fuzzServerSeeds(t))
}
