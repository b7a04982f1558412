package node

import (
	"fmt"
	"os"

	ds "github.com/ipfs/go-datastore"
	leveldb "github.com/ipfs/go-ds-leveldb"
)

// OpenLevelDB opens, or creates, the LevelDB datastore in the folder at
// path: the default datastore of a store node. It creates the folder if
// needed. The caller owns the datastore and must Close it (ds.Batching is
// an io.Closer) after closing every Store opened over it. Writes are
// synced to disk when a batch commits.
func OpenLevelDB(path string) (ds.Batching, error) {
	if path == "" {
		// leveldb takes "" to mean in memory, never what a caller of a
		// disk store wants.
		return nil, fmt.Errorf("open leveldb: empty path")
	}
	if err := os.MkdirAll(path, 0o755); err != nil {
		return nil, fmt.Errorf("open leveldb: %w", err)
	}
	d, err := leveldb.NewDatastore(path, nil)
	if err != nil {
		return nil, fmt.Errorf("open leveldb %s: %w", path, err)
	}
	return d, nil
}
