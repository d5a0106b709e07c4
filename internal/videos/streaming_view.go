package videos

import (
	"context"
)

// Streaming is where a video's adaptive streaming stands, as clients see
// it: State is pending, running, done or failed; Percent the ladder's
// progress (0 to 100); RenditionsDone the pixel heights of the renditions
// that play, lowest first; RenditionsSkipped those that will not be made,
// with why (quota_exceeded).
type Streaming struct {
	State             string             `json:"state"`
	Percent           int                `json:"percent"`
	RenditionsDone    []int              `json:"renditions_done"`
	RenditionsSkipped []SkippedRendition `json:"renditions_skipped"`
}

// SkippedRendition is a rung of the ladder that was not made.
type SkippedRendition struct {
	Height int    `json:"height"`
	Reason string `json:"reason"`
}

// streaming fills v's streaming field and what Sign needs to grant its
// renditions from r, whose renditions must be loaded (loadRenditions).
func (r record) streaming(v *Video) {
	st := Streaming{State: r.StreamingState, Percent: r.StreamingPercent, RenditionsDone: []int{}, RenditionsSkipped: []SkippedRendition{}}
	if st.State == "" {
		st.State = streamingPending
	}
	v.renditions = nil
	for _, x := range r.Renditions {
		switch x.State {
		case renditionDone:
			st.RenditionsDone = append(st.RenditionsDone, x.Height)
			v.renditions = append(v.renditions, x)
		case renditionSkipped:
			st.RenditionsSkipped = append(st.RenditionsSkipped, SkippedRendition{Height: x.Height, Reason: x.Reason})
		}
	}
	v.Streaming, v.storyboard = st, r.Storyboard
}

// loadRenditions reads the renditions of rs in one query, skipping the
// query when no video of rs has begun streaming.
func (s *Service) loadRenditions(ctx context.Context, rs []record) error {
	var ids []string
	for i := range rs {
		rs[i].Renditions = []rendition{}
		if rs[i].StreamingState != streamingPending && rs[i].StreamingState != "" {
			ids = append(ids, rs[i].ID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	byID, err := s.store.renditionsOf(ctx, s.db.R, ids)
	if err != nil {
		return err
	}
	for i := range rs {
		if got, ok := byID[rs[i].ID]; ok {
			rs[i].Renditions = got
		}
	}
	return nil
}

// view is the video r as clients see it, with its streaming.
func (s *Service) view(ctx context.Context, r record) (Video, error) {
	r, err := s.withRenditions(ctx, r)
	if err != nil {
		return Video{}, err
	}
	return r.public(), nil
}

// withRenditions is r with its renditions loaded (loadRenditions).
func (s *Service) withRenditions(ctx context.Context, r record) (record, error) {
	rs := []record{r}
	if err := s.loadRenditions(ctx, rs); err != nil {
		return record{}, err
	}
	return rs[0], nil
}

// views are the videos rs as clients see them, with their streaming, for
// one query more however many they are.
func (s *Service) views(ctx context.Context, rs []record) ([]Video, error) {
	if err := s.loadRenditions(ctx, rs); err != nil {
		return nil, err
	}
	out := make([]Video, len(rs))
	for i, r := range rs {
		out[i] = r.public()
	}
	return out, nil
}
