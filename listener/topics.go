package listener

import (
	"crypto/sha256"
	"encoding/binary"

	"github.com/embedstream/stream"
)

// topicID is the topic ID (KIP-516) Metadata v10+ reports for a topic: a
// hash of its name and creation time, so it stays the same across
// restarts and changes when the topic is deleted and re-created, as a
// Kafka topic ID does. Clients (franz-go among them) use IDs from
// Metadata to notice a re-created topic, so a constant zero would hide
// one. It is never the zero UUID, which Kafka reserves for "no ID".
func topicID(info stream.TopicInfo) [16]byte {
	h := sha256.New()
	h.Write([]byte(info.Name))
	var ts [8]byte
	if !info.Created.IsZero() {
		binary.BigEndian.PutUint64(ts[:], uint64(info.Created.UnixNano()))
	}
	h.Write(ts[:])
	var id [16]byte
	copy(id[:], h.Sum(nil))
	// Mark it a version-4 (random), RFC 4122 variant UUID, as Kafka's are:
	// tools that parse IDs expect the format, and the bits make it
	// non-zero.
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	return id
}

// topicByID finds the topic with the given ID among the broker's.
func (c *conn) topicByID(id [16]byte) (stream.TopicInfo, bool) {
	for _, name := range c.s.broker.Topics() {
		info, err := c.s.broker.DescribeTopic(name)
		if err == nil && topicID(info) == id {
			return info, true
		}
	}
	return stream.TopicInfo{}, false
}

// clusterID is the ClusterID Metadata and DescribeCluster report: one
// broker, one cluster, always the same name (22 characters, the length of
// Kafka's base64 IDs, which some tools assume).
const clusterID = "embedstream-listener-0"

// nodeID is the broker's node: there is only one.
const nodeID = 0
