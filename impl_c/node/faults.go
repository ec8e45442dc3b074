package node

import (
	"math/rand"

	"heraclius/impl_c/manifest"
	"heraclius/impl_c/wire"
)

// msgKind is the PeerMessage member name (SPEC 16 `messages`).
func msgKind(m *wire.PeerMessage) string {
	switch {
	case m.Proposal != nil:
		return "proposal"
	case m.Prepare != nil:
		return "prepare"
	case m.Commit != nil:
		return "commit"
	case m.Heartbeat != nil:
		return "heartbeat"
	case m.ViewChange != nil:
		return "view_change"
	case m.ViewData != nil:
		return "view_data"
	case m.NewView != nil:
		return "new_view"
	case m.Forward != nil:
		return "forward"
	case m.SyncRequest != nil:
		return "sync_request"
	case m.SyncResponse != nil:
		return "sync_response"
	case m.QueuePull != nil:
		return "queue_pull"
	case m.QueueBatch != nil:
		return "queue_batch"
	}
	return ""
}

// faultRule is one SPEC 16 rule with its PRNG.
type faultRule struct {
	manifest.Fault
	rng *rand.Rand
}

func newRules(fs []manifest.Fault) []*faultRule {
	var out []*faultRule
	for _, f := range fs {
		out = append(out, &faultRule{Fault: f, rng: rand.New(rand.NewSource(f.Seed))})
	}
	return out
}

func (r *faultRule) matches(kind, target string) bool {
	if len(r.Messages) > 0 {
		ok := false
		for _, m := range r.Messages {
			if m == kind {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	if len(r.Targets) > 0 && target != "" {
		ok := false
		for _, t := range r.Targets {
			if t == target {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	p := 1.0
	if r.Probability != nil {
		p = *r.Probability
	}
	return p >= 1 || r.rng.Float64() < p
}

func hasAction(rules []*faultRule, a string) *faultRule {
	for _, r := range rules {
		if r.Action == a {
			return r
		}
	}
	return nil
}
