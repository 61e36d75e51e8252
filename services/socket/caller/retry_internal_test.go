package caller

import "testing"

func TestRetryBudget(t *testing.T) {
	t.Parallel()
	c := &Client{cfg: config{maxAttempts: 3}}
	// tries counts the retries a request gets when every attempt fails
	// the same way.
	tries := func(info ActionInfo, sent bool) int {
		b := c.retryBudget(info)
		n := 0
		for b.spend(sent) {
			n++
		}
		return n
	}
	cases := []struct {
		name string
		info ActionInfo
		sent bool
		want int
	}{
		{"write never sent: moved up to maxMoves times", ActionInfo{}, false, maxMoves},
		{"write that may have run: never again", ActionInfo{}, true, 0},
		{"idempotent that may have run: sent WithMaxAttempts times in all", ActionInfo{Idempotent: true}, true, 2},
		{"idempotent never sent: moved up to maxMoves times", ActionInfo{Idempotent: true}, false, maxMoves},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tries(tc.info, tc.sent); got != tc.want {
				t.Fatalf("%d retries, want %d", got, tc.want)
			}
		})
	}
	// Moves and sends come from one budget: sends count as moves.
	b := c.retryBudget(ActionInfo{Idempotent: true})
	for range maxMoves - 1 {
		if !b.spend(false) {
			t.Fatal("a move refused within the budget")
		}
	}
	if !b.spend(true) || b.spend(false) {
		t.Fatal("the last move of the budget was not the last")
	}
}
