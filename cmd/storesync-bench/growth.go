package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	ds "github.com/ipfs/go-datastore"

	"github.com/storesync/storesync/reconcile"
)

// modeGrowth measures how session time grows with the store.
const modeGrowth = "growth"

// growthStores is one size's pair of stores and its keys.
type growthStores struct {
	n      int
	trees  *treePair
	keys   []reconcile.Key
	sample []ds.Key // leaves for the read baseline (readLatency)
}

// runGrowth measures how a session's time grows from the first size of
// -n to each of the others: it builds a pair of stores of every size, then
// runs every case round by round, each round the sizes one after another
// (-reps sessions each, their median), so that a slow spell of the
// machine falls on every size of a round, and the growth of a round is
// the ratio of medians measured side by side. Sessions are ours alone:
// negentropy's own growth is in the table (-n N -mode scattered).
func runGrowth(ctx context.Context, work string, o options, cases []benchCase) error {
	sizes := make([]*growthStores, 0, len(o.ns))
	defer func() {
		for _, s := range sizes {
			s.trees.close()
		}
	}()
	for _, n := range o.ns {
		s, err := openGrowthStores(ctx, work, n, o.seed, o.treeOptions()...)
		if err != nil {
			return err
		}
		sizes = append(sizes, s)
	}
	// medians[case][size][round]
	medians := make([][][]float64, len(cases))
	for i := range medians {
		medians[i] = make([][]float64, len(sizes))
	}
	for r := range o.rounds {
		for ci, c := range cases {
			for si, s := range sizes {
				secs := make([]float64, 0, o.reps)
				for rep := range o.reps {
					if err := ctx.Err(); err != nil {
						return err
					}
					seed := o.seed + uint64(r*o.reps+rep)*7919
					_, t, err := runCase(ctx, s.trees, nil, s.keys, c, seed)
					if err != nil {
						return fmt.Errorf("case=%s n=%d d=%d: %w", c.mode, s.n, c.d, err)
					}
					secs = append(secs, t[0])
				}
				m := median(secs)
				medians[ci][si] = append(medians[ci][si], m)
				read, err := readLatency(ctx, s.trees.db.Batching, s.sample)
				if err != nil {
					return err
				}
				fmt.Printf("round=%d case=%s n=%d d=%d reps=%d seconds_median=%.6f leaf_read_us=%.1f\n",
					r+1, c.mode, s.n, c.d, o.reps, m, float64(read.Nanoseconds())/1000)
			}
		}
	}
	for ci, c := range cases {
		for si := 1; si < len(sizes); si++ {
			g := summarize(ratios(medians[ci][si], medians[ci][0]))
			fmt.Printf("growth case=%s d=%d from n=%d to n=%d rounds=%d ratio_median=%.2f ratio_min=%.2f ratio_max=%.2f\n",
				c.mode, c.d, sizes[0].n, sizes[si].n, o.rounds, g.med, g.min, g.max)
		}
	}
	return nil
}

// openGrowthStores builds the pair of stores of n messages in a folder of
// its own and fills their cell memos with one session, as runCases does.
// It keeps the keys alone, not the messages.
func openGrowthStores(ctx context.Context, work string, n int, seed uint64, opts ...reconcile.Option) (*growthStores, error) {
	folder := filepath.Join(work, fmt.Sprintf("growth-%d", n))
	if err := os.Mkdir(folder, 0o755); err != nil {
		return nil, err
	}
	keys := keysOf(generate(n, seed))
	trees, err := openTrees(ctx, folder, keys, opts...)
	if err != nil {
		return nil, err
	}
	if err := warmUp(ctx, trees, nil, keys, seed); err != nil {
		trees.close()
		return nil, err
	}
	sample, err := leafSample(ctx, trees.db.Batching, seed)
	if err != nil {
		trees.close()
		return nil, err
	}
	return &growthStores{n: n, trees: trees, keys: keys, sample: sample}, nil
}
