package transport

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/vmihailenco/msgpack/v5"
)

// fuzzSeeds are the starting corpus (also committed under
// testdata/fuzz/FuzzReadFrame): a valid hello, one asking for the
// caught_up marker, a hello and requests, an oversize prefix, a truncated
// frame and garbage.
func fuzzSeeds(tb testing.TB) [][]byte {
	frames := func(fs ...*Frame) []byte {
		var b []byte
		for _, f := range fs {
			var err error
			if b, err = AppendFrame(b, f); err != nil {
				tb.Fatal(err)
			}
		}
		return b
	}
	since := uint64(7)
	hello := &Frame{T: TypeHello, V: ProtocolVersion, Role: "agent", User: "bob", Token: testToken, Client: "c1", Since: &since}
	helloReq := frames(
		&Frame{T: TypeHello, V: ProtocolVersion, Role: "admin", Token: testToken},
		&Frame{T: TypeRequest, ID: 1, Op: "noop", Seq: 1},
		&Frame{T: TypeRequest, ID: 2, Op: "create_mrd", Args: []byte{0x82, 0xa2, 'i', 'd', 0xa1, 'x', 0xa4, 'n', 'a', 'm', 'e', 0xa1, 'X'}},
		&Frame{T: TypeRequest, ID: 3, Op: "status"},
		&Frame{T: TypePing, ID: 4},
	)
	marker := *hello
	marker.Marker = true
	return [][]byte{
		frames(hello),
		frames(&marker, &Frame{T: TypeRequest, ID: 1, Op: "status"}),
		helloReq,
		{0xff, 0xff, 0xff, 0xff, 0x80},
		helloReq[:len(helloReq)-3],
		[]byte("GET / HTTP/1.1\r\n\r\n"),
		{0, 0, 0, 3, 0xc1, 0xde, 0xad},
	}
}

// FuzzReadFrame feeds arbitrary bytes to the framing functions and to a
// live server session: nothing panics, every error is a typed framing error
// or an I/O error, and the server answers only with well-formed frames and
// known, non-internal error codes.
func FuzzReadFrame(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	srv := NewServer(newFakeBackend(), ServerConfig{
		NodeID:       "fuzz",
		MaxFrame:     1024,
		OutboxFrames: 64,
		MaxInFlight:  4,
		Logger:       slog.New(slog.DiscardHandler),
	})
	f.Cleanup(func() { srv.Close() })

	f.Fuzz(func(t *testing.T, data []byte) {
		checkFraming(t, data)
		checkSession(t, srv, data)
	})
}

// checkFraming reads every frame of data with a small limit, and holds the
// hand-written codec to the reflection codec on each.
func checkFraming(t *testing.T, data []byte) {
	const max = 64
	r := bytes.NewReader(data)
	for {
		p, err := ReadFramePayload(r, max, nil)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				if c := api.CodeOf(err); c != api.CodeFrameTooLarge && c != api.CodeMalformedFrame {
					t.Fatalf("ReadFramePayload: untyped error %v", err)
				}
			}
			return
		}
		if len(p) == 0 || len(p) > max {
			t.Fatalf("ReadFramePayload returned %d bytes, limit %d", len(p), max)
		}
		// The hand-written decoder agrees with the reflection decoder.
		checkDecodeSame(t, p)
		var fr Frame
		if err := DecodeFrame(p, &fr); err != nil {
			if api.CodeOf(err) != api.CodeMalformedFrame {
				t.Fatalf("DecodeFrame: untyped error %v", err)
			}
			continue
		}
		if fr.T == "" {
			t.Fatal("DecodeFrame accepted a frame without a type")
		}
		enc, err := EncodeFrame(&fr)
		if err != nil {
			t.Fatalf("a decoded frame does not encode: %v", err)
		}
		var again Frame
		if err := DecodeFrame(enc[4:], &again); err != nil || again.T != fr.T {
			t.Fatalf("a re-encoded frame does not decode: %v", err)
		}
		if want, _ := appendFrameReflect(nil, &fr); !bytes.Equal(enc, want) {
			t.Fatalf("EncodeFrame(%+v)\n got  % x\n want % x", fr, enc, want)
		}
	}
}

// fuzzConn is the server's end of a session under fuzzing: it reads the
// fuzz input (then EOF, as if the client had half-closed) and writes to a
// pipe the test reads. No sockets, so no port runs out however many inputs.
type fuzzConn struct {
	net.Conn
	in *bytes.Reader
}

func (c *fuzzConn) Read(p []byte) (int, error) { return c.in.Read(p) }

// checkSession runs a server session on data and reads everything the server
// says until it closes the connection.
func checkSession(t *testing.T, srv *Server, data []byte) {
	cli, end := net.Pipe()
	defer cli.Close()
	_ = cli.SetDeadline(time.Now().Add(waitTimeout))
	srv.start(&fuzzConn{Conn: end, in: bytes.NewReader(data)})

	br := bufio.NewReader(cli)
	for {
		var f Frame
		err := ReadFrame(br, DefaultMaxFrame, &f)
		if err != nil {
			if !isClosedErr(err) {
				t.Fatalf("reading the server: %v", err)
			}
			break
		}
		switch f.T {
		case TypeWelcome, TypeResponse, TypePong, TypeEvent, TypeBye, TypeCaughtUp:
		default:
			t.Fatalf("server sent a %q frame", f.T)
		}
		if f.Err != nil && (f.Err.Code == api.CodeInternal || f.Err.Name != f.Err.Code.String() || f.Err.Name == "") {
			t.Fatalf("server sent error %+v", f.Err)
		}
	}
	if n := srv.panics.Load(); n != 0 {
		t.Fatalf("%d panics recovered in the server", n)
	}
}

// TestDecodeFrameDeclaredLengths: a payload that declares more than it
// holds is refused before msgpack sizes a buffer or recurses on it.
func TestDecodeFrameDeclaredLengths(t *testing.T) {
	prefix := []byte{0x82, 0xa1, 't', 0xa3, 'r', 'e', 'q', 0xa4, 'a', 'r', 'g', 's'} // {t: "req", args: ...
	nested := append(slices.Clone(prefix), bytes.Repeat([]byte{0x91}, 10_000)...)
	nested = append(nested, 0x01)
	cases := map[string][]byte{
		"str32 of 4 GiB":          append(slices.Clone(prefix), 0xdb, 0xff, 0xff, 0xff, 0xff, 'x'),
		"bin32 of 4 GiB":          append(slices.Clone(prefix), 0xc6, 0xff, 0xff, 0xff, 0xff),
		"ext32 of 4 GiB":          append(slices.Clone(prefix), 0xc9, 0xff, 0xff, 0xff, 0xff, 0x01),
		"array32 of 4G values":    append(slices.Clone(prefix), 0xdd, 0xff, 0xff, 0xff, 0xff, 0x01),
		"map32 of 4G pairs":       append(slices.Clone(prefix), 0xdf, 0xff, 0xff, 0xff, 0xff, 0x01),
		"values beyond the end":   append(slices.Clone(prefix), 0x92, 0x9f, 0x01),
		"nested 10000 deep":       nested,
		"key of 4 GiB":            {0x81, 0xdb, 0xff, 0xff, 0xff, 0xff},
		"never-used code":         append(slices.Clone(prefix), 0xc1),
		"cut header":              append(slices.Clone(prefix), 0xdb, 0xff),
		"map of more than it has": {0x8f, 0xa1, 't', 0xa3, 'r', 'e', 'q'},
	}
	for name, p := range cases {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for range 100 {
				var f Frame
				if err := DecodeFrame(p, &f); api.CodeOf(err) != api.CodeMalformedFrame {
					t.Fatalf("DecodeFrame: %v, want malformed_frame", err)
				}
			}
			runtime.ReadMemStats(&after)
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 4<<20 {
				t.Fatalf("100 refused decodes allocated %d bytes", grew)
			}
		})
	}

	// What the encoder writes always passes, however it nests.
	deep := any("leaf")
	for range maxNesting - 3 {
		deep = []any{deep}
	}
	args, err := msgpack.Marshal(map[string]any{
		"s": strings.Repeat("x", 70_000), "b": bytes.Repeat([]byte{1}, 300), "n": []any{nil, true, -1, 1 << 40, 3.5, float32(1.5)},
		"m": map[string]any{"k": map[string]any{}}, "deep": deep, "t": time.Unix(1, 2),
	})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := EncodeFrame(&Frame{T: TypeRequest, ID: 1, Op: "x", Args: args})
	if err != nil {
		t.Fatal(err)
	}
	var f Frame
	if err := DecodeFrame(enc[4:], &f); err != nil || !bytes.Equal(f.Args, args) {
		t.Fatalf("DecodeFrame of a valid frame: %v", err)
	}
}
