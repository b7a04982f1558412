package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
)

// readSamples is how many leaves the read baseline reads.
const readSamples = 2000

// leafSample returns the datastore keys of up to readSamples leaves of
// store A's tree, drawn at random.
func leafSample(ctx context.Context, db ds.Batching, seed uint64) ([]ds.Key, error) {
	res, err := db.Query(ctx, query.Query{Prefix: "/a/n/00", KeysOnly: true})
	if err != nil {
		return nil, err
	}
	defer res.Close()
	var all []ds.Key
	for e := range res.Next() {
		if e.Error != nil {
			return nil, e.Error
		}
		all = append(all, ds.RawKey(e.Key))
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("no leaves under /a/n/00")
	}
	r := rand.New(rand.NewPCG(seed, 7))
	out := make([]ds.Key, min(readSamples, len(all)))
	for i := range out {
		out[i] = all[r.IntN(len(all))]
	}
	return out, nil
}

// readLatency is the baseline of a session's reads: the mean time of a
// random read of a leaf from the same LevelDB, straight from the
// datastore (no node cache), measured right after the session, so that a
// session's time can be told apart from what its store's reads cost at
// that size.
func readLatency(ctx context.Context, db ds.Batching, sample []ds.Key) (time.Duration, error) {
	start := time.Now()
	for _, k := range sample {
		if _, err := db.Get(ctx, k); err != nil {
			return 0, err
		}
	}
	return time.Since(start) / time.Duration(len(sample)), nil
}
