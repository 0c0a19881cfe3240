package state

// SetChunkHook makes s run f after each transaction but the last of a change
// committed in several; an error from f stops the commit there, as the
// process dying between two transactions would.
func SetChunkHook(s *Store, f func(part int) error) { s.chunkHook = f }
