package shim

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestFormatEntry(t *testing.T) {
	ts := time.Date(2016, 10, 6, 0, 17, 9, 669794202, time.UTC)
	for _, tc := range []struct {
		stream  string
		partial bool
		text    string
		want    string
	}{
		{"stdout", false, "log content 1", "2016-10-06T00:17:09.669794202Z stdout F log content 1\n"},
		{"stderr", true, "part", "2016-10-06T00:17:09.669794202Z stderr P part\n"},
		{"stdout", false, "", "2016-10-06T00:17:09.669794202Z stdout F \n"},
	} {
		if got := string(formatEntry(ts, tc.stream, tc.partial, []byte(tc.text))); got != tc.want {
			t.Errorf("formatEntry(%q, %v, %q) = %q, want %q", tc.stream, tc.partial, tc.text, got, tc.want)
		}
	}
}

func TestParseLogEntry(t *testing.T) {
	ts := time.Date(2016, 10, 6, 0, 17, 9, 669794202, time.UTC)
	for _, tc := range []struct {
		name string
		line string // "": formatEntry's line for want
		want LogEntry
		bad  bool
	}{
		{name: "round trip full", want: LogEntry{ts, "stdout", false, []byte("log content 1")}},
		{name: "round trip partial", want: LogEntry{ts, "stderr", true, []byte("part")}},
		{name: "round trip empty", want: LogEntry{ts, "stdout", false, nil}},
		{name: "round trip spaces", want: LogEntry{ts, "stdout", false, []byte(" a  b ")}},
		{name: "no newline", line: "2016-10-06T00:17:09.669794202Z stdout P part",
			want: LogEntry{ts, "stdout", true, []byte("part")}},
		{name: "no text or space", line: "2016-10-06T00:17:09.669794202Z stderr F\n",
			want: LogEntry{ts, "stderr", false, nil}},
		{name: "other time zone", line: "2016-10-06T02:17:09.669794202+02:00 stdout F x\n",
			want: LogEntry{ts, "stdout", false, []byte("x")}},
		{name: "empty", line: "\n", bad: true},
		{name: "too few fields", line: "2016-10-06T00:17:09Z stdout\n", bad: true},
		{name: "bad time", line: "yesterday stdout F x\n", bad: true},
		{name: "bad stream", line: "2016-10-06T00:17:09Z stdin F x\n", bad: true},
		{name: "bad tag", line: "2016-10-06T00:17:09Z stdout X x\n", bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			line := []byte(tc.line)
			if tc.line == "" {
				line = formatEntry(tc.want.Time, tc.want.Stream, tc.want.Partial, tc.want.Text)
			}
			got, err := ParseLogEntry(line)
			if tc.bad {
				if err == nil {
					t.Fatalf("ParseLogEntry(%q) = %+v, want an error", line, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseLogEntry(%q): %v", line, err)
			}
			if !got.Time.Equal(tc.want.Time) || got.Stream != tc.want.Stream || got.Partial != tc.want.Partial ||
				string(got.Text) != string(tc.want.Text) {
				t.Errorf("ParseLogEntry(%q) = %+v, want %+v", line, got, tc.want)
			}
		})
	}
}

func TestCopyStreamSplitsLongLines(t *testing.T) {
	long := strings.Repeat("a", 2*maxLogLine+10)
	for _, tc := range []struct {
		name  string
		input string
		want  []string // "<tag> <length or text>"
	}{
		{"lines", "one\ntwo\n", []string{"F one", "F two"}},
		{"unterminated last line", "one\ntwo", []string{"F one", "F two"}},
		{"long line", long + "\nend\n", []string{"P 16384", "P 16384", "F 10", "F end"}},
		{"empty line", "\n", []string{"F "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.log")
			l, err := openCRILog(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := l.copyStream("stdout", strings.NewReader(tc.input)); err != nil {
				t.Fatal(err)
			}
			l.close()
			data, _ := os.ReadFile(path)
			var got []string
			for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
				f := strings.SplitN(line, " ", 4)
				text := f[3]
				if text != "" && strings.Trim(text, "a") == "" {
					text = strconv.Itoa(len(text)) // runs of a's are shown by length
				}
				got = append(got, f[2]+" "+text)
				if f[1] != "stdout" {
					t.Errorf("stream %q", f[1])
				}
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
