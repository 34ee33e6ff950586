package hashring_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/cespare/xxhash/v2"

	"github.com/cardinal-proxy/cardinal/hashring"
)

func ExampleRing() {
	ring := hashring.New([]hashring.Member{
		{Name: "node-c", Addr: "10.0.0.3:9090"},
		{Name: "node-a", Addr: "10.0.0.1:9090"},
		{Name: "node-b", Addr: "10.0.0.2:9090"},
	})
	key := xxhash.Sum64String("__name__\xffhttp_requests_total\xffjob\xffapi\xff")
	fmt.Println(ring.Len(), "members, version", ring.VersionString())
	fmt.Println("shard", ring.Shard(key), "is owned by", ring.OwnerOfKey(key).Name)

	grown := hashring.New(append(ring.Members(), hashring.Member{Name: "node-d", Addr: "10.0.0.4:9090"}))
	moved := hashring.Moved(ring, grown)
	fmt.Printf("node-d joining moves %d shards, all to node-d: %v\n", len(moved), len(moved) == grown.ShardsOwned("node-d"))
	// Output:
	// 3 members, version 87db4ab347ceac97
	// shard 198243 is owned by node-a
	// node-d joining moves 65160 shards, all to node-d: true
}

// The server's side: serve the identity, keep the membership running, route by its ring.
func ExampleMembership() {
	cfg := hashring.DefaultConfig()
	cfg.DNS = hashring.DNSConfig{Name: "cardinal.monitoring.svc.cluster.local", Type: hashring.DNSTypeA, Port: 9090}
	self := hashring.Member{Name: "node-a", Addr: "10.0.0.1:9090"} // from $NODE_NAME and the pod IP

	discoverers, err := hashring.NewDiscoverers(cfg, nil)
	if err != nil {
		panic(err)
	}
	membership, err := hashring.NewMembership(self, cfg, discoverers, hashring.HTTPProber{}, nil, slog.Default())
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle(hashring.IdentityPath, hashring.IdentityHandler(func(string) hashring.Identity {
		return hashring.Identity{Name: self.Name, Ready: true, RingVersion: membership.Ring().VersionString()}
	}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go membership.Run(ctx)
	go func() {
		for range membership.Changes() {
			_ = membership.Ring() // hand over the shards in hashring.Moved(old, new) at the next window
		}
	}()
}
