package outbox

// MaxBehind is maxBehind, for the tests of its bound.
const MaxBehind = maxBehind
