package videos

// SetSpoolSpace replaces how the service reads the spool's free and total
// bytes.
func (s *Service) SetSpoolSpace(f func(dir string) (free, total uint64, err error)) { s.spoolSpace = f }
