// A user handler module as users write one (named in the config's `handlers`):
// the benchmark runs it beside the built-in `echo`, which runs on the event
// loop, to measure the path every user task takes (a pool thread).
export default function userEcho (payload) {
  return payload
}
