// Package faults holds the fault suite of issue 8 ("Money is exact under
// retries, races and faults"): the shop's services and the gateway wired
// as the stack wires them, but with several instances per service sharing
// one store, each behind a faultproxy, so that tests can kill, restart,
// black-hole and overload instances under load and check that money and
// writes stay exact. The package has only tests; RELIABILITY.md lists the
// scenarios, their commands and their last figures.
package faults
