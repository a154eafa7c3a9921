// Cost of the event contract at the produce boundary (EventFactory.create: id, time, JSON-schema
// validation) and the consume boundary (parseEventJson: size check, parse, validation, upcasting),
// against bare JSON.stringify / JSON.parse of the same envelopes.
import { EventFactory, parseEventJson, type CustodianEvent } from '@custodian/event-contracts';
import { figure, type Benchmark, type Figure } from '../benchmark.ts';
import { interleavedMedians, timeSync } from '../measurement.ts';
import { EVENTS_PER_SESSION, manySessionSpecs } from './session-events.ts';

const NAME = 'event-validation';

export const eventValidation: Benchmark = {
  name: NAME,
  description: 'events/s through EventFactory.create + parseEventJson vs bare JSON.stringify / JSON.parse of the same envelopes',
  async run({ quick, log }): Promise<Figure[]> {
    const sessions = 400;
    const specs = manySessionSpecs(sessions);
    const factory = new EventFactory({ service: 'gateway', instance: 'bench' });
    const envelopes = specs.map((s) => factory.create(s));
    const jsons = envelopes.map((e) => JSON.stringify(e));
    const perRound = quick ? 10_000 : 60_000;
    const rounds = quick ? 3 : 5;
    // Keeps results observable so the JIT cannot drop the work.
    let sink = 0;

    const rate = (work: (i: number) => void) => () => perRound / timeSync(() => {
      for (let i = 0; i < perRound; i++) work(i % specs.length);
    });
    const measurements = {
      roundTrip: rate((i) => {
        sink += parseEventJson(JSON.stringify(factory.create(specs[i]!))).sequence;
      }),
      bareRoundTrip: rate((i) => {
        sink += (JSON.parse(JSON.stringify(envelopes[i])) as CustodianEvent).sequence;
      }),
      produce: rate((i) => {
        sink += JSON.stringify(factory.create(specs[i]!)).length;
      }),
      bareProduce: rate((i) => {
        sink += JSON.stringify(envelopes[i]).length;
      }),
      consume: rate((i) => {
        sink += parseEventJson(jsons[i]!).sequence;
      }),
      bareConsume: rate((i) => {
        sink += (JSON.parse(jsons[i]!) as CustodianEvent).sequence;
      }),
    };
    // Warm-up: compile the validators and let the JIT settle before the first timed round.
    for (const m of Object.values(measurements)) m();
    log(`${rounds} interleaved rounds of ${perRound} events`);
    const r = await interleavedMedians(rounds, measurements);
    if (sink === 0) log('(sink is zero)');

    const meanBytes = Math.round(jsons.reduce((n, j) => n + Buffer.byteLength(j), 0) / jsons.length);
    const mix = `${EVENTS_PER_SESSION} event types of a gateway session, ${meanBytes} B mean JSON`;
    return [
      figure(NAME, {
        metric: 'produce + consume round trip (EventFactory.create → JSON.stringify → parseEventJson)',
        unit: 'events/s',
        better: 'higher',
        value: r.roundTrip,
        baseline: { name: 'JSON.parse(JSON.stringify(envelope))', value: r.bareRoundTrip },
        notes: mix,
      }),
      figure(NAME, {
        metric: 'produce: EventFactory.create (UUIDv7, timestamp, schema validation) + JSON.stringify',
        unit: 'events/s',
        better: 'higher',
        value: r.produce,
        baseline: { name: 'JSON.stringify(envelope)', value: r.bareProduce },
      }),
      figure(NAME, {
        metric: 'consume: parseEventJson (size check, JSON.parse, envelope + payload validation)',
        unit: 'events/s',
        better: 'higher',
        value: r.consume,
        baseline: { name: 'JSON.parse', value: r.bareConsume },
      }),
    ];
  },
};
