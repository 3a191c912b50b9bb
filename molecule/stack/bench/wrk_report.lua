-- wrk reporter for bench_stack.py: requests/s, p95 latency and every non-2xx/3xx or socket error.
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format("BENCH rps=%.2f p95_ms=%.2f p50_ms=%.2f requests=%d errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(95.0) / 1000.0,
    latency:percentile(50.0) / 1000.0, summary.requests, errors))
end
