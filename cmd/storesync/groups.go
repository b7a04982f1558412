package main

import (
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/storesync/storesync/gossip"
	"github.com/storesync/storesync/reconcile"
)

// topicsAndGroups collects --content-topic, --group and --allow in the
// order given: a content topic belongs to the last --group before it, or
// to no group when none came before it; an --allow (a peer ID) makes the
// last --group private and lets that peer in. For example
//
//	--content-topic /a/1/x/proto --group chat --content-topic /a/1/chat/proto --allow 12D3KooW...
//
// keeps /a/1/x/proto alone and /a/1/chat/proto in the private group chat.
type topicsAndGroups struct {
	plain  []string
	groups []groupFlag
}

type groupFlag struct {
	name   string
	topics []string
	allow  []string
}

// topicFlag, groupFlagValue and allowFlag are the three flags' values.
type (
	topicFlag      struct{ t *topicsAndGroups }
	groupFlagValue struct{ t *topicsAndGroups }
	allowFlag      struct{ t *topicsAndGroups }
)

func (f topicFlag) String() string      { return "" }
func (f groupFlagValue) String() string { return "" }
func (f allowFlag) String() string      { return "" }

func (f topicFlag) Set(v string) error {
	if v == "" {
		return errors.New("empty content topic")
	}
	if n := len(f.t.groups); n > 0 {
		f.t.groups[n-1].topics = append(f.t.groups[n-1].topics, v)
	} else {
		f.t.plain = append(f.t.plain, v)
	}
	return nil
}

func (f groupFlagValue) Set(v string) error {
	if v == "" {
		return errors.New("empty group name")
	}
	f.t.groups = append(f.t.groups, groupFlag{name: v})
	return nil
}

func (f allowFlag) Set(v string) error {
	n := len(f.t.groups)
	if n == 0 {
		return errors.New("--allow must follow a --group")
	}
	if _, err := peer.Decode(v); err != nil {
		return fmt.Errorf("not a peer ID: %w", err)
	}
	f.t.groups[n-1].allow = append(f.t.groups[n-1].allow, v)
	return nil
}

// build returns the plain scopes and the groups over a pubsub topic.
func (t *topicsAndGroups) build(topicOf func(contentTopic string) (string, error)) ([]reconcile.Scope, []gossip.Group, error) {
	scopeOf := func(ct string) (reconcile.Scope, error) {
		pt, err := topicOf(ct)
		if err != nil {
			return reconcile.Scope{}, fmt.Errorf("--content-topic %s: %w", ct, err)
		}
		return reconcile.Scope{PubsubTopic: pt, ContentTopic: ct}, nil
	}
	var scopes []reconcile.Scope
	for _, ct := range t.plain {
		sc, err := scopeOf(ct)
		if err != nil {
			return nil, nil, err
		}
		scopes = append(scopes, sc)
	}
	var groups []gossip.Group
	for _, g := range t.groups {
		if len(g.topics) == 0 {
			return nil, nil, fmt.Errorf("--group %s has no --content-topic after it", g.name)
		}
		grp := gossip.Group{Name: g.name}
		for _, ct := range g.topics {
			sc, err := scopeOf(ct)
			if err != nil {
				return nil, nil, err
			}
			grp.Scopes = append(grp.Scopes, sc)
		}
		for _, a := range g.allow {
			id, _ := peer.Decode(a) // checked by the flag
			grp.Allow = append(grp.Allow, id)
		}
		groups = append(groups, grp)
	}
	return scopes, groups, nil
}
