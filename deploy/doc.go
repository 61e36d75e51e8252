// Package deploy holds streamgate's deployment files: the Dockerfile, the
// Kustomize manifests under kustomize/ and the page on scaling out. Its
// test renders the manifests with Kustomize's library (krusty), as
// `kustomize build deploy/kustomize` does, and checks what comes out. It
// is a module of its own so that Kustomize stays out of streamgate's
// go.mod; run its test with `cd deploy && go test ./...`.
package deploy
