package videos

// SetSpoolSpace replaces how the service reads the spool's free and total
// bytes.
func (s *Service) SetSpoolSpace(f func(dir string) (free, total uint64, err error)) { s.spoolSpace = f }

// EnqueueStreaming is enqueueStreaming, which finalise and restore call.
var EnqueueStreaming = enqueueStreaming

// ErrGone is what Transcode and Storyboard return for a video that went
// to the trash while they worked.
var ErrGone = errGone
