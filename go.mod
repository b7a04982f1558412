module github.com/storesync/storesync

go 1.25.0

require (
	github.com/gogo/protobuf v1.3.2
	github.com/ipfs/go-datastore v0.9.2
	github.com/stretchr/testify v1.11.1
)

require (
	github.com/davecgh/go-spew v1.1.1 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/pmezard/go-difflib v1.0.0 // indirect
	gopkg.in/yaml.v3 v3.0.1 // indirect
)
