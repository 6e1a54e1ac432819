// Bench only, loaded with --import into the aggregator: runs Date.now() from BENCH_CLOCK_START,
// BENCH_CLOCK_SPEED times faster than real time counted from BENCH_CLOCK_REAL0, so a fifteen-
// minute window of reports can be loaded in less than fifteen real minutes. It stops at
// BENCH_CLOCK_STOP (if set), so queries after loading see the window as the last report left it.

const start = Number(process.env.BENCH_CLOCK_START)
const speed = Number(process.env.BENCH_CLOCK_SPEED)
const real0 = Number(process.env.BENCH_CLOCK_REAL0)
const stop = Number(process.env.BENCH_CLOCK_STOP ?? Infinity)
if (start > 0 && speed > 0 && real0 > 0) {
  const real = Date.now.bind(Date)
  Date.now = () => Math.min(stop, start + (real() - real0) * speed)
}
