package gossip

import (
	"slices"
	"testing"

	"buf.build/go/protovalidate"
	"github.com/google/uuid"

	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
)

func nodeNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = uuid.NewString()
	}
	slices.Sort(names)
	return names
}

// A report names at most MaxReportedPeers peers in each list: that many pass the control
// plane's validation, one more is refused.
func TestMaxReportedPeersIsTheLimitTheControlPlaneEnforces(t *testing.T) {
	v, err := protovalidate.New()
	if err != nil {
		t.Fatal(err)
	}
	names := nodeNames(MaxReportedPeers + 1)
	if err := v.Validate(&agentv1.ReportRequest{ReachablePeers: names[:MaxReportedPeers], UnreachablePeers: names[1:]}); err != nil {
		t.Fatalf("a report naming %d peers in each list: %v", MaxReportedPeers, err)
	}
	if v.Validate(&agentv1.ReportRequest{ReachablePeers: names}) == nil || v.Validate(&agentv1.ReportRequest{UnreachablePeers: names}) == nil {
		t.Fatalf("a report naming %d peers passes validation: MaxReportedPeers is out of date", len(names))
	}
}

func TestReportWindowKeepsShortListsAndSlicesLongOnesByNode(t *testing.T) {
	short := nodeNames(5)
	if got := reportWindow(short, "me", 5); !slices.Equal(got, short) {
		t.Fatalf("a list within the limit changed: %v", got)
	}
	if got := reportWindow(nil, "me", 5); got != nil {
		t.Fatalf("no peers became %v", got)
	}

	names := nodeNames(1500)
	covered := map[string]bool{}
	windows := map[string]bool{}
	for _, self := range nodeNames(30) {
		w := reportWindow(names, self, 1000)
		if len(w) != 1000 {
			t.Fatalf("window of %d names, want 1000", len(w))
		}
		// Consecutive names of the sorted list, wrapping around, each once.
		start := slices.Index(names, w[0])
		for i, n := range w {
			if want := names[(start+i)%len(names)]; n != want {
				t.Fatalf("window entry %d is %s, want %s", i, n, want)
			}
			covered[n] = true
		}
		if again := reportWindow(names, self, 1000); !slices.Equal(again, w) {
			t.Fatal("a node's window changed between reports of the same peers")
		}
		windows[w[0]] = true
	}
	if len(windows) < 20 {
		t.Fatalf("30 nodes share %d windows: they do not spread", len(windows))
	}
	if len(covered) != len(names) {
		t.Fatalf("the nodes together name %d of %d peers", len(covered), len(names))
	}
}
