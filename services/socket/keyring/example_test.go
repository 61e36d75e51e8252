package keyring_test

import (
	"fmt"

	"github.com/streamgate/streamgate/services/socket/keyring"
	"github.com/streamgate/streamgate/status"
)

// A keyring holds the keys callers present when they open a stream;
// configuration keeps only their hashes.
func ExampleNew() {
	keys, err := keyring.New(
		keyring.Key{Name: "gateway", Hash: keyring.Hash("s3cret"), Delegate: true},
		keyring.Key{Name: "reports", Secret: "r3ad", Actions: []string{"GET_USER"}},
	)
	if err != nil {
		panic(err)
	}
	k, err := keys.Verify("s3cret")
	fmt.Println(k.Name, k.Delegate, err)
	_, err = keys.Verify("guess")
	fmt.Println(status.CodeOf(err))
	fmt.Println(keys.Revoke("reports"))
	// Output:
	// gateway true <nil>
	// UNAUTHENTICATED
	// true
}
