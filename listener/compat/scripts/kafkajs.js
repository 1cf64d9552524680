#!/usr/bin/env node
// kafkajs 2.2.4 (npm) against a Kafka-protocol server, defaults.
// usage: node kafkajs.js ADDR setup|resume|member NAME
'use strict';
const { Kafka, logLevel } = require('kafkajs');

const [addr, phase, name] = process.argv.slice(2);
if (!['setup', 'resume', 'member'].includes(phase) || !name) {
  console.error('usage: kafkajs.js ADDR setup|resume|member NAME');
  process.exit(2);
}
const topic = `compat-${name}`, group = `compat-${name}-group`;
const kafka = new Kafka({ clientId: 'compat', brokers: [addr], logLevel: logLevel.ERROR });

// n records numbered from first, over ten keys (as matrix_test.go).
const keyed = (first, n) => Array.from({ length: n }, (_, i) =>
  [`${name}-k${(first + i) % 10}`, `${name}-v${first + i}`]);

function expect(step, want, got) {
  const s = (rs) => rs.map(([k, v]) => `${k}=${v}`).sort().join(',');
  if (s(want) !== s(got)) {
    console.error(`${step}: want ${s(want)}, got ${s(got)}`);
    process.exit(1);
  }
  console.log('ok', step);
}

async function produce(recs) {
  const p = kafka.producer();
  await p.connect();
  await p.send({ topic, messages: recs.map(([key, value]) => ({ key, value })) });
  await p.disconnect();
}

// read consumes n records in groupId, from the start for a new group;
// kafkajs commits the offsets it resolved when the consumer disconnects.
async function read(groupId, n, step) {
  const c = kafka.consumer({ groupId });
  await c.connect();
  await c.subscribe({ topic, fromBeginning: true });
  const got = [];
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${step}: timed out with ${got.length}`)), 60000);
    c.run({
      eachMessage: async ({ message }) => {
        got.push([message.key.toString(), message.value.toString()]);
        if (got.length === n) { clearTimeout(timer); resolve(); }
      },
    });
  });
  await c.disconnect();
  return got;
}

async function main() {
  if (phase === 'setup') {
    const adm = kafka.admin();
    await adm.connect();
    if (!await adm.createTopics({ topics: [{ topic, numPartitions: 3, replicationFactor: 1 }], waitForLeaders: true })) {
      throw new Error('create topic: not created');
    }
    await adm.disconnect();
    const first = keyed(0, 30);
    await produce(first);
    // kafkajs reads only in groups: a group of its own stands for "no group".
    expect('consume from earliest', first, await read(`compat-${Date.now()}`, 30, 'consume from earliest'));
    expect('consume in a group', first, await read(group, 30, 'consume in a group'));
  } else if (phase === 'resume') {
    const second = keyed(30, 10);
    await produce(second);
    expect('resume after a restart', second, await read(group, 10, 'resume'));
  } else {
    const c = kafka.consumer({ groupId: `compat-mixed-${name}-group` });
    await c.connect();
    await c.subscribe({ topic: `compat-mixed-${name}`, fromBeginning: true });
    await c.run({ eachMessage: async ({ partition, message }) => {
      console.log('record', partition, message.key.toString());
    } });
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
