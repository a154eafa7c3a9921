package main

// Two rules of a Custodian evidence pack, written from docs/evidence-pack-format.md (§4 completeness
// policy, §6 checkpoint-gap) with the leaves a leaf-set proof walk was given: whether the pack
// proves its completeness (every leaf of its range given, the edge leaves outside the window), and
// the checkpoint-gap findings recomputed from the signing times the checkpoints state in their
// signed notes (a `signed-at` extension line, covered by the log's signature).

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
)

type packRules struct {
	From     string `json:"from"`
	To       string `json:"to"`
	Coverage struct {
		Kind      string `json:"kind"`
		FirstLeaf uint64 `json:"firstLeaf"`
		EndLeaf   uint64 `json:"endLeaf"`
	} `json:"coverage"`
	// Accept a pack that does not prove its completeness (the verifier's --allow-incomplete).
	AllowIncomplete bool `json:"allowIncomplete"`
	// controls/mapping.json checkpointGap.maxDelayMicroseconds; absent: checkpoint-gap not recomputable.
	MaxDelayMicroseconds *int64 `json:"maxDelayMicroseconds"`
	// The pack's checkpoints (indices into the request's checkpoints), in increasing size.
	Checkpoints []int `json:"checkpoints"`
	// The ids of the checkpoint-gap findings evidence.json lists.
	GapFindings []string `json:"gapFindings"`
	// The controls the mapping's checkpoint-gap kind counts against (absent: the mapping has no
	// such kind, so no such finding is raised), and the pack's control scope, if any: a control
	// pack raises it only when its control is one of them.
	GapKindControls *[]string `json:"gapKindControls"`
	Control         string    `json:"control"`
}

// givenLeaf is a leaf the walk was given (not a gap), with its index.
type givenLeaf struct {
	index uint64
	data  []byte
}

var signedAtValue = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$`)

// instantMicros: microseconds since the epoch of an RFC 3339 time (digits beyond the sixth dropped).
func instantMicros(s string) (int64, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, err
	}
	return t.UnixMicro(), nil
}

// signedAt returns the signing time a checkpoint body states, "" when it states none.
func signedAt(body string) (string, error) {
	lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
	found := ""
	for _, line := range lines[min(3, len(lines)):] {
		if !strings.HasPrefix(line, "signed-at ") {
			continue
		}
		if found != "" {
			return "", errors.New("two signed-at lines")
		}
		found = strings.TrimPrefix(line, "signed-at ")
		if !signedAtValue.MatchString(found) {
			return "", fmt.Errorf("signed-at %q is not an RFC 3339 UTC time with six fraction digits", found)
		}
		if _, err := time.Parse(time.RFC3339Nano, found); err != nil {
			return "", err
		}
	}
	return found, nil
}

// findingID is the name-based UUID of deterministic-uuid.ts: SHA-256 of the parts joined by NUL.
func findingID(parts ...string) string {
	d := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	d[6] = (d[6] & 0x0f) | 0x50
	d[8] = (d[8] & 0x3f) | 0x80
	h := hex.EncodeToString(d[:16])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

type envelopeTime struct {
	Type       string `json:"type"`
	OccurredAt string `json:"occurredAt"`
}

// checkCompleteness: a complete or headers pack gives every leaf of [firstLeaf, endLeaf) and both
// edge leaves (their times outside the window); any other pack fails unless incompleteness is accepted.
func checkCompleteness(p *packRules, leaves []givenLeaf, size uint64) (string, error) {
	kind := p.Coverage.Kind
	if kind != "complete" && kind != "headers" {
		if p.AllowIncomplete {
			return "NOT proven (coverage " + kind + "), accepted as asked", nil
		}
		return "", fmt.Errorf("completeness NOT proven: coverage %q holds no headers of its window", kind)
	}
	first, end := p.Coverage.FirstLeaf, p.Coverage.EndLeaf
	if end < first || end > size {
		return "", fmt.Errorf("coverage [%d, %d) does not fit a tree of size %d", first, end, size)
	}
	from, err := instantMicros(p.From)
	if err != nil {
		return "", err
	}
	to, err := instantMicros(p.To)
	if err != nil {
		return "", err
	}
	byIndex := map[uint64][]byte{}
	for _, l := range leaves {
		byIndex[l.index] = l.data
	}
	for i := first; i < end; i++ {
		if _, ok := byIndex[i]; !ok {
			return "", fmt.Errorf("leaf %d of the range [%d, %d) is not in the pack", i, first, end)
		}
	}
	edge := func(i uint64, before bool) error {
		data, ok := byIndex[i]
		if !ok {
			return fmt.Errorf("the edge leaf %d is not in the pack", i)
		}
		var e envelopeTime
		if err := json.Unmarshal(data, &e); err != nil {
			return fmt.Errorf("edge leaf %d: %w", i, err)
		}
		at, err := instantMicros(e.OccurredAt)
		if err != nil {
			return fmt.Errorf("edge leaf %d: %w", i, err)
		}
		if (before && at >= from) || (!before && at < to) {
			return fmt.Errorf("the edge leaf %d occurred at %s, inside the window", i, e.OccurredAt)
		}
		return nil
	}
	if first > 0 {
		if err := edge(first-1, true); err != nil {
			return "", err
		}
	}
	if end < size {
		if err := edge(end, false); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("proven: every leaf %d..%d given, edges outside the window", first, int64(end)-1), nil
}

// checkGaps recomputes the checkpoint-gap findings of a complete or headers pack and compares them
// with those listed: each late checkpoint (signed time − earliest newly covered event > limit) must
// be listed; each listed one must be such a checkpoint, or one whose time is not stated.
func checkGaps(p *packRules, leaves []givenLeaf, checkpoints []checkpointTime) (string, error) {
	if (p.Coverage.Kind != "complete" && p.Coverage.Kind != "headers") || p.MaxDelayMicroseconds == nil {
		if len(p.GapFindings) > 0 {
			return "not recomputable from this pack (checked for kind only)", nil
		}
		return "not recomputable from this pack", nil
	}
	from, err := instantMicros(p.From)
	if err != nil {
		return "", err
	}
	to, err := instantMicros(p.To)
	if err != nil {
		return "", err
	}
	sort.Slice(checkpoints, func(i, j int) bool { return checkpoints[i].size < checkpoints[j].size })
	required, allowed := map[string]string{}, map[string]bool{}
	at, found := 0, false
	var earliest struct {
		index  uint64
		micros int64
	}
	closeCheckpoint := func() {
		c := checkpoints[at]
		at++
		if !found {
			return
		}
		found = false
		id := findingID("finding", "checkpoint-gap", fmt.Sprint(earliest.index), fmt.Sprint(c.size))
		if c.signedAt == "" {
			allowed[id] = true
			return
		}
		signed, _ := instantMicros(c.signedAt)
		if signed-earliest.micros > *p.MaxDelayMicroseconds {
			required[id] = fmt.Sprintf("checkpoint %d signed at %s, %d µs after leaf %d", c.size, c.signedAt, signed-earliest.micros, earliest.index)
		}
	}
	for _, l := range leaves {
		if l.index < p.Coverage.FirstLeaf || l.index >= p.Coverage.EndLeaf {
			continue
		}
		var e envelopeTime
		if err := json.Unmarshal(l.data, &e); err != nil {
			return "", fmt.Errorf("leaf %d: %w", l.index, err)
		}
		t, err := instantMicros(e.OccurredAt)
		if err != nil || t < from || t >= to || e.Type == "checkpoint.signed" {
			continue
		}
		for at < len(checkpoints) && l.index >= checkpoints[at].size {
			closeCheckpoint()
		}
		if at >= len(checkpoints) {
			return "", fmt.Errorf("leaf %d is covered by no checkpoint of the pack", l.index)
		}
		if !found || t < earliest.micros {
			found, earliest.index, earliest.micros = true, l.index, t
		}
	}
	for at < len(checkpoints) {
		closeCheckpoint()
	}
	raised := p.GapKindControls != nil
	if raised && p.Control != "" {
		raised = false
		for _, c := range *p.GapKindControls {
			raised = raised || c == p.Control
		}
	}
	if !raised {
		required, allowed = map[string]string{}, map[string]bool{}
	}
	listed := map[string]bool{}
	for _, id := range p.GapFindings {
		listed[id] = true
		if _, ok := required[id]; !ok && !allowed[id] {
			return "", fmt.Errorf("checkpoint-gap finding %s is listed but the signed times do not raise it", id)
		}
	}
	for id, why := range required {
		if !listed[id] {
			return "", fmt.Errorf("checkpoint-gap finding %s (%s) is not listed", id, why)
		}
	}
	return fmt.Sprintf("%d finding(s) recomputed from the signed times, %d possible under checkpoints without a time", len(required), len(allowed)), nil
}

type checkpointTime struct {
	size     uint64
	signedAt string
}
