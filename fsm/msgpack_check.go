package fsm

// maxSnapshotDepth bounds the nesting of a snapshot's msgpack value. A
// state nests 6 deep (state, requests, request, transcript, message, from);
// command results carry arbitrary but shallow values.
const maxSnapshotDepth = 32
