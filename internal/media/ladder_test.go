package media

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

func rungSizes(rs []Rung) []string {
	var s []string
	for _, r := range rs {
		s = append(s, r.Name+"="+itoa(r.Width)+"x"+itoa(r.Height))
	}
	return s
}

func TestLadderSizes(t *testing.T) {
	tests := []struct {
		w, h int
		want []string
	}{
		{1920, 1080, []string{"240p=426x240", "360p=640x360", "480p=854x480", "720p=1280x720", "1080p=1920x1080"}},
		{3840, 2160, []string{"240p=426x240", "360p=640x360", "480p=854x480", "720p=1280x720", "1080p=1920x1080"}},
		{1280, 720, []string{"240p=426x240", "360p=640x360", "480p=854x480", "720p=1280x720"}},
		{1080, 1920, []string{"240p=240x426", "360p=360x640", "480p=480x854", "720p=720x1280", "1080p=1080x1920"}},
		{640, 480, []string{"240p=320x240", "360p=480x360", "480p=640x480"}},
		{853, 479, []string{"240p=428x240", "360p=642x360"}},                                    // 480 > 479: never above the source
		{1920, 800, []string{"240p=576x240", "360p=864x360", "480p=1152x480", "720p=1728x720"}}, // 2.4:1
		{176, 144, []string{"144p=176x144"}},                                                    // below the lowest rung: its own size
		{175, 143, []string{"142p=174x142"}},                                                    // ...made even
		{143, 175, []string{"142p=142x174"}},
		{1, 1, []string{"2p=2x2"}},
	}
	for _, tc := range tests {
		got := rungSizes(Ladder(Source{Width: tc.w, Height: tc.h, FrameRate: Rational{30, 1}}))
		if !slices.Equal(got, tc.want) {
			t.Errorf("%dx%d: %v, want %v", tc.w, tc.h, got, tc.want)
		}
	}
}

func TestLadderRates(t *testing.T) {
	at30 := Ladder(Source{Width: 1920, Height: 1080, FrameRate: Rational{30, 1}})
	at60 := Ladder(Source{Width: 1920, Height: 1080, FrameRate: Rational{60000, 1001}})
	for i, r := range at30 {
		if r.CRF != 23 || r.BufSize != 2*r.MaxRate || r.Bandwidth != int64(r.MaxRate+r.AudioRate) || r.AudioRate < 64_000 {
			t.Errorf("%s: %+v", r.Name, r)
		}
		if i > 0 && (r.MaxRate <= at30[i-1].MaxRate || r.AudioRate < at30[i-1].AudioRate) {
			t.Errorf("%s: rates do not grow with the rung: %+v after %+v", r.Name, r, at30[i-1])
		}
		if at60[i].MaxRate != r.MaxRate*3/2 {
			t.Errorf("%s at 60 fps: %d, want half again %d", r.Name, at60[i].MaxRate, r.MaxRate)
		}
	}
}

// fastSource can be remuxed.
func fastSource() Source {
	return Source{
		Width: 1280, Height: 720, FrameRate: Rational{30, 1}, BitRate: 3_000_000,
		VideoCodec: "h264", Profile: "High", PixFmt: "yuv420p", BitDepth: 8,
		AudioStream: 1, AudioCodec: "aac", KeyframeInterval: 2, StartsWithKeyframe: true,
	}
}

func TestFastStart(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Source)
		why    string // "" when it remuxes
	}{
		{"h264 aac", func(*Source) {}, ""},
		{"no audio", func(s *Source) { s.AudioStream, s.AudioCodec = -1, "" }, ""},
		{"full range", func(s *Source) { s.PixFmt = "yuvj420p" }, ""},
		{"baseline", func(s *Source) { s.Profile = "Constrained Baseline" }, ""},
		{"keyframes 6 s apart", func(s *Source) { s.KeyframeInterval = 6 }, ""},
		{"hevc", func(s *Source) { s.VideoCodec = "hevc" }, "not H.264"},
		{"10-bit", func(s *Source) { s.PixFmt, s.Profile = "yuv420p10le", "High 10" }, "8-bit 4:2:0"},
		{"10-bit by depth", func(s *Source) { s.BitDepth = 10 }, "8-bit 4:2:0"},
		{"4:2:2", func(s *Source) { s.PixFmt = "yuv422p" }, "8-bit 4:2:0"},
		{"High 4:4:4 profile", func(s *Source) { s.Profile = "High 4:4:4 Predictive" }, "profile"},
		{"extended", func(s *Source) { s.Profile = "Extended" }, "profile"},
		{"interlaced", func(s *Source) { s.Interlaced = true }, "interlaced"},
		{"opus", func(s *Source) { s.AudioCodec = "opus" }, "not AAC"},
		{"keyframes 8 s apart", func(s *Source) { s.KeyframeInterval = 8 }, "8.0 s apart"},
		{"no keyframe first", func(s *Source) { s.StartsWithKeyframe = false }, "does not start with a keyframe"},
		{"not measured", func(s *Source) { s.KeyframeInterval = 0 }, "not measured"},
	}
	for _, tc := range tests {
		s := fastSource()
		tc.change(&s)
		why := s.FastStart()
		if tc.why == "" && why != "" || tc.why != "" && !strings.Contains(why, tc.why) {
			t.Errorf("%s: %q, want %q", tc.name, why, tc.why)
		}
		p := PlanLadder(s)
		if p.First.Copy != (why == "") || p.NoRemux != why {
			t.Errorf("%s: plan %+v", tc.name, p)
		}
		if why == "" {
			if p.First.Name != SourceRung || p.First.Width != 1280 || p.First.Height != 720 || p.First.Bandwidth != 3_000_000 || len(p.Rest) != 4 {
				t.Errorf("%s: remux plan %+v", tc.name, p)
			}
		} else if p.First.Name != "240p" || len(p.Rest) != 3 || p.Rest[0].Name != "360p" {
			t.Errorf("%s: plan %+v", tc.name, p)
		}
	}
}

func TestOutputRate(t *testing.T) {
	tests := []struct {
		avg, base Rational
		want      Rational
	}{
		{Rational{30, 1}, Rational{30, 1}, Rational{30, 1}},
		{Rational{30000, 1001}, Rational{30000, 1001}, Rational{30000, 1001}},
		{Rational{2987, 100}, Rational{30, 1}, Rational{30, 1}}, // a phone's variable rate
		{Rational{24, 1}, Rational{24, 1}, Rational{24, 1}},
		{Rational{120, 1}, Rational{120, 1}, Rational{60, 1}},
		{Rational{120000, 1001}, Rational{0, 0}, Rational{60000, 1001}},
		{Rational{100, 1}, Rational{0, 0}, Rational{50, 1}},
		{Rational{0, 0}, Rational{25, 1}, Rational{25, 1}},
		{Rational{15, 1}, Rational{15, 1}, Rational{15, 1}},
		{Rational{45, 2}, Rational{30, 1}, Rational{23, 1}},
		{Rational{1, 2}, Rational{1, 2}, Rational{1, 1}},
		{Rational{90000, 1}, Rational{0, 0}, Rational{25, 1}},
		{Rational{0, 0}, Rational{0, 0}, Rational{25, 1}},
	}
	for _, tc := range tests {
		if got := outputRate(tc.avg, tc.base); got != tc.want {
			t.Errorf("outputRate(%v, %v) = %v, want %v", tc.avg, tc.base, got, tc.want)
		}
	}
}

func TestFillSource(t *testing.T) {
	tests := []struct {
		name, json string
		want       Source
		err        string
	}{
		{
			name: "rotated phone video with cover art",
			json: `{"streams":[
				{"index":0,"codec_type":"video","codec_name":"mjpeg","width":600,"height":600,"disposition":{"attached_pic":1}},
				{"index":1,"codec_type":"video","codec_name":"h264","profile":"High","pix_fmt":"yuv420p","width":1920,"height":1080,
				 "sample_aspect_ratio":"1:1","avg_frame_rate":"2997/100","r_frame_rate":"30/1","field_order":"progressive",
				 "bits_per_raw_sample":"8","side_data_list":[{"rotation":-90}]},
				{"index":2,"codec_type":"audio","codec_name":"aac","channels":2,"sample_rate":"44100"}],
				"format":{"duration":"12.5","bit_rate":"8000000"}}`,
			want: Source{Duration: 12.5, BitRate: 8_000_000, VideoStream: 1, VideoCodec: "h264", Profile: "High", PixFmt: "yuv420p",
				BitDepth: 8, Width: 1080, Height: 1920, FrameRate: Rational{30, 1},
				AudioStream: 2, AudioCodec: "aac", AudioChannels: 2, AudioRate: 44100},
		},
		{
			name: "anamorphic interlaced, rotation tag, stream duration",
			json: `{"streams":[{"index":0,"codec_type":"video","codec_name":"mpeg2video","width":720,"height":576,
				"sample_aspect_ratio":"64:45","avg_frame_rate":"25/1","field_order":"tt","tags":{"rotate":"180"},"duration":"3.0"}],
				"format":{"duration":"N/A"}}`,
			want: Source{Duration: 3, VideoCodec: "mpeg2video", Width: 1024, Height: 576, FrameRate: Rational{25, 1}, Interlaced: true, AudioStream: -1},
		},
		{name: "audio only", json: `{"streams":[{"codec_type":"audio","codec_name":"mp3","channels":2}],"format":{"duration":"3"}}`, err: "no video stream"},
		{name: "cover art only", json: `{"streams":[{"codec_type":"video","width":10,"height":10,"disposition":{"attached_pic":1}}],"format":{"duration":"3"}}`, err: "no video stream"},
		{name: "no size", json: `{"streams":[{"codec_type":"video","codec_name":"h264"}],"format":{"duration":"3"}}`, err: "picture size"},
		{name: "huge", json: `{"streams":[{"codec_type":"video","width":100000,"height":10}],"format":{"duration":"3"}}`, err: "picture size"},
		{name: "no duration", json: `{"streams":[{"codec_type":"video","width":10,"height":10}],"format":{"duration":"N/A"}}`, err: "no duration"},
	}
	for _, tc := range tests {
		var doc probeDoc
		if err := json.Unmarshal([]byte(tc.json), &doc); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var s Source
		err := doc.fillSource(&s)
		if tc.err != "" {
			if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: %v, want ErrUnsupported: %s", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || s != tc.want {
			t.Errorf("%s: %+v, %v\nwant %+v", tc.name, s, err, tc.want)
		}
	}
}
