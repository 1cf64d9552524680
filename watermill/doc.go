// Package embedwatermill implements Watermill's message.Publisher and
// message.Subscriber over a stream.Client: the embedded broker
// ((*stream.Broker).Client) or a Kafka cluster (this repository's kafka
// module), with the conventions of Watermill's own Kafka Pub/Sub.
//
// The package is named embedwatermill, not watermill, so that it can be
// imported next to github.com/ThreeDotsLabs/watermill (whose loggers and
// UUIDs every Watermill program uses) without an alias.
//
// A message is one record: the payload is the value, the metadata are
// headers, and the UUID travels in the header UUIDHeader. The record key,
// which decides the partition, comes from PublisherConfig.PartitionKey
// (KeyFromMetadata takes it from a metadata field).
//
// A Subscriber with a ConsumerGroup joins that group: the group's members
// split the topic's partitions. Each partition hands the output channel one
// message at a time: the next one waits until the message is Acked (its
// offset+1 is then committed) or Nacked (it is then delivered again). With
// no ConsumerGroup every Subscribe reads all partitions on its own, from the
// start, and commits nothing. See doc/watermill.md in the repository.
package embedwatermill
