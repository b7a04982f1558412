package protocol

import (
	"github.com/storesync/storesync/pb"
	"github.com/storesync/storesync/reconcile"
)

// WakuMessage returns m as a Waku message (14/WAKU2-MESSAGE) of version 0:
// the fields the message hash covers. Its pubsub topic travels beside it.
func WakuMessage(m *reconcile.Message) *pb.WakuMessage {
	return &pb.WakuMessage{
		Payload:      m.Payload,
		ContentTopic: m.ContentTopic,
		Timestamp:    m.Timestamp,
		Meta:         m.Meta,
	}
}

// MessageFromWaku returns the message a Waku message published on a pubsub
// topic stands for, sharing wm's slices. It keeps the fields the message
// hash covers: whoever stores it must first refuse what storesync does
// not keep (an ephemeral message, a version other than 0, a rate limit
// proof it cannot check), which this does not look at.
func MessageFromWaku(pubsubTopic string, wm *pb.WakuMessage) reconcile.Message {
	return reconcile.Message{
		PubsubTopic:  pubsubTopic,
		ContentTopic: wm.ContentTopic,
		Payload:      wm.Payload,
		Meta:         wm.Meta,
		Timestamp:    wm.Timestamp,
	}
}
