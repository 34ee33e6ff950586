package e2e

import (
	"testing"
	"time"
)

// TestCluster_churn_joins_and_removes_a_member_round_after_round is the rolling restart
// test's join and removal, repeated CARDINAL_CHURN_ROUNDS times (`make churntest`; unset,
// the test is skipped: `make test` has the rolling restart test): a fourth member joins a
// cluster of three whose agents keep writing, takes its share of the outputs, is removed
// from the peers file, hands everything back and is stopped, round after round. A race
// between a ring change and a request in flight shows only now and then; many rounds give
// it the chance. The checks are the rolling restart test's.
func TestCluster_churn_joins_and_removes_a_member_round_after_round(t *testing.T) {
	rounds := envInt(t, "CARDINAL_CHURN_ROUNDS", 0)
	if testing.Short() || rounds == 0 {
		t.Skip("churn test: set CARDINAL_CHURN_ROUNDS (make churntest)")
	}
	prom := startPrometheus(t, prometheusOptions{})
	members, peers := startCluster(t, prom.WriteURL, clusterMembers+1, clusterMembers)
	agents, joiner := members[:clusterMembers], members[clusterMembers]

	snd := startClusterSender(agents, newCrashHistory(time.Now().Truncate(crashStep)))
	time.Sleep(10 * time.Second)
	for round := range rounds {
		peers.write(t, members)
		if round == 0 {
			joiner.start(t)
		} else {
			joiner.card.Start()
		}
		waitJoined(t, joiner, members)
		time.Sleep(8 * time.Second)
		removeMember(t, joiner, peers, agents)
		time.Sleep(5 * time.Second)
		if code := joiner.card.Stop(); code != 0 {
			t.Errorf("round %d: %s exited with %d after SIGTERM, want 0", round, joiner.name, code)
		}
		if err := snd.err(); err != nil {
			t.Fatalf("round %d: sender: %v", round, err)
		}
		t.Logf("round %d of %d done", round+1, rounds)
		time.Sleep(3 * time.Second)
	}
	time.Sleep(7 * time.Second)
	stopAndCheckCluster(t, snd, prom, members)
}
