package auth_test

import (
	"fmt"

	"github.com/streamgate/streamgate/gateway/auth"
	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/services/socket/keyring"
)

func ExampleAuthenticator_Authenticate() {
	a, err := auth.New(config.Auth{APIKeys: []config.APIKey{
		{Name: "ci", Hash: keyring.Hash("s3cret"), Roles: []string{"deploy"}},
	}})
	if err != nil {
		panic(err)
	}

	p, present, err := a.Authenticate("Bearer s3cret", "")
	fmt.Println(p.Subject, p.Roles, present, err)
	fmt.Println(auth.Allow(config.Access{Roles: []string{"deploy"}}, p, present))
	fmt.Println(auth.Allow(config.Access{Roles: []string{"admin"}}, p, present))

	_, present, err = a.Authenticate("", "wrong")
	fmt.Println(present, err)

	p, present, _ = a.Authenticate("", "")
	fmt.Println(auth.Allow(config.Access{}, p, present))
	// Output:
	// ci [deploy] true <nil>
	// <nil>
	// PERMISSION_DENIED: the caller lacks a role this route requires
	// true UNAUTHENTICATED: unknown API key
	// UNAUTHENTICATED: credentials required: send an API key or a bearer token
}
