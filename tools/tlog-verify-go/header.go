package main

// Custodian's leaf format 2 (docs/evidence-pack-format.md §5), written from the specification: the
// RFC 8785 (JCS) canonical JSON of an event's header, the envelope without its payload plus the
// payload's SHA-256 and the values of a fixed list of payload paths. A leaf given as a whole event
// (an events.jsonl line) at or after the log's switch is turned into its header here, so that the
// TypeScript and Go sides derive header leaves independently.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode/utf16"
)

var headerSelectorPaths = []string{
	"payload.approvalId",
	"payload.claimedSubject",
	"payload.client.tls",
	"payload.connection.name",
	"payload.decision",
	"payload.exposed",
	"payload.sessionId",
}

// headerLeaf returns the format-2 leaf of an event line; a line that is already a header (it has
// leafFormat 2) is returned unchanged.
func headerLeaf(line []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	var event map[string]any
	if err := dec.Decode(&event); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if f, ok := event["leafFormat"]; ok {
		if n, ok := f.(json.Number); ok && n.String() == "2" {
			return line, nil
		}
		return nil, errors.New("an event cannot have a member named leafFormat")
	}
	payload, ok := event["payload"]
	if !ok {
		payload = nil
	}
	header := map[string]any{}
	for k, v := range event {
		if k != "payload" {
			header[k] = v
		}
	}
	var canonicalPayload bytes.Buffer
	if err := jcs(&canonicalPayload, payload); err != nil {
		return nil, err
	}
	digest := sha256.Sum256(canonicalPayload.Bytes())
	header["leafFormat"] = json.Number("2")
	header["payloadSha256"] = hex.EncodeToString(digest[:])
	selectors := map[string]any{}
	for _, path := range headerSelectorPaths {
		var cur any = event
		for _, key := range strings.Split(path, ".") {
			obj, ok := cur.(map[string]any)
			if !ok {
				cur = nil
				break
			}
			cur = obj[key]
		}
		switch cur.(type) {
		case nil:
		case map[string]any, []any:
			selectors[path] = map[string]any{}
		default:
			selectors[path] = cur
		}
	}
	header["selectors"] = selectors
	var out bytes.Buffer
	if err := jcs(&out, header); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// jcs writes the RFC 8785 form of a value decoded with UseNumber. Numbers are written as they were
// read: the input lines are canonical already (the format requires it), so their text is the
// ECMAScript form JCS asks for.
func jcs(w *bytes.Buffer, v any) error {
	switch x := v.(type) {
	case nil:
		w.WriteString("null")
	case bool:
		if x {
			w.WriteString("true")
		} else {
			w.WriteString("false")
		}
	case json.Number:
		w.WriteString(x.String())
	case string:
		jcsString(w, x)
	case []any:
		w.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				w.WriteByte(',')
			}
			if err := jcs(w, e); err != nil {
				return err
			}
		}
		w.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		// RFC 8785 §3.2.3: property names sorted by their UTF-16 code units.
		sort.Slice(keys, func(i, j int) bool { return lessUTF16(keys[i], keys[j]) })
		w.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				w.WriteByte(',')
			}
			jcsString(w, k)
			w.WriteByte(':')
			if err := jcs(w, x[k]); err != nil {
				return err
			}
		}
		w.WriteByte('}')
	default:
		return fmt.Errorf("unexpected JSON value %T", v)
	}
	return nil
}

func lessUTF16(a, b string) bool {
	ua, ub := utf16.Encode([]rune(a)), utf16.Encode([]rune(b))
	for i := 0; i < len(ua) && i < len(ub); i++ {
		if ua[i] != ub[i] {
			return ua[i] < ub[i]
		}
	}
	return len(ua) < len(ub)
}

// jcsString: the ECMAScript JSON.stringify escaping RFC 8785 §3.2.2.2 prescribes.
func jcsString(w *bytes.Buffer, s string) {
	w.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			w.WriteString(`\"`)
		case '\\':
			w.WriteString(`\\`)
		case '\b':
			w.WriteString(`\b`)
		case '\f':
			w.WriteString(`\f`)
		case '\n':
			w.WriteString(`\n`)
		case '\r':
			w.WriteString(`\r`)
		case '\t':
			w.WriteString(`\t`)
		default:
			if r < 0x20 {
				fmt.Fprintf(w, `\u%04x`, r)
			} else {
				w.WriteRune(r)
			}
		}
	}
	w.WriteByte('"')
}
