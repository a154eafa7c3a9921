// Command tlog-verify-go checks Custodian transparency-log artifacts with implementations no one
// at Custodian wrote: golang.org/x/mod/sumdb/note (signed notes), github.com/transparency-dev/merkle
// (RFC 6962 hashing, inclusion and consistency proofs, compact ranges for Custodian's leaf-set
// proofs) and github.com/transparency-dev/formats
// (checkpoints, cosignature/v1, tlog-proof). With a leaf-set proof's `pack` rules (pack.go) it also
// decides an evidence pack's completeness and recomputes its checkpoint-gap findings from the
// signing times the checkpoints state under the log key. It is used by the TypeScript interop tests.
//
// Usage: tlog-verify-go <request.json>   (or "-" for stdin)
//
// It prints {"results":[{"check","ok","error"}…]} and exits 0 when every check passed, 1 when one
// failed, 2 when the request could not be read.
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/transparency-dev/formats/log"
	fnote "github.com/transparency-dev/formats/note"
	tproof "github.com/transparency-dev/formats/proof"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

type request struct {
	Origin       string   `json:"origin"`
	LogVkey      string   `json:"logVkey"`
	WitnessVkeys []string `json:"witnessVkeys"`
	// Signed checkpoint notes; other checks refer to them by position.
	Checkpoints []string `json:"checkpoints"`
	Inclusion   []struct {
		Checkpoint int      `json:"checkpoint"`
		Index      uint64   `json:"index"`
		Leaf       string   `json:"leaf"` // base64 entry bytes; hashed here as an RFC 6962 leaf
		Proof      []string `json:"proof"`
	} `json:"inclusion"`
	Consistency []struct {
		From  int      `json:"from"`
		To    int      `json:"to"`
		Proof []string `json:"proof"`
	} `json:"consistency"`
	TlogProofs []struct {
		Text string `json:"text"`
		Leaf string `json:"leaf"`
	} `json:"tlogProofs"`
	// All leaves of a checkpoint's tree: the root is recomputed with a compact range.
	LeafSets []struct {
		Checkpoint int      `json:"checkpoint"`
		Leaves     []string `json:"leaves"`
	} `json:"leafSets"`
	// Custodian leaf-set proofs (an evidence pack's proofs/leaf-set.json): the given leaves, in
	// order, and the compact ranges of the gaps between them recompute a checkpoint's root.
	LeafSetProofs []struct {
		Checkpoint int      `json:"checkpoint"`
		Leaves     []string `json:"leaves"`
		// The log's switch to leaf format 2: a leaf given at or after this index as a whole event
		// (an events.jsonl line) is hashed as its header (header.go). Absent: every leaf as given.
		Format2From *uint64 `json:"format2From"`
		// Pack rules checked on the leaves given (pack.go): completeness and checkpoint-gap.
		Pack *packRules `json:"pack"`
		Gaps []struct {
			Begin  uint64   `json:"begin"`
			End    uint64   `json:"end"`
			Hashes []string `json:"hashes"`
		} `json:"gaps"`
	} `json:"leafSetProofs"`
}

type result struct {
	Check  string `json:"check"`
	OK     bool   `json:"ok"`
	Error  string `json:"error,omitempty"`
	Detail string `json:"detail,omitempty"`
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: tlog-verify-go <request.json | ->")
		os.Exit(2)
	}
	var in io.Reader = os.Stdin
	if os.Args[1] != "-" {
		f, err := os.Open(os.Args[1])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		defer f.Close()
		in = f
	}
	var req request
	if err := json.NewDecoder(in).Decode(&req); err != nil {
		fmt.Fprintln(os.Stderr, "bad request:", err)
		os.Exit(2)
	}
	results := run(req)
	ok := true
	for _, r := range results {
		ok = ok && r.OK
	}
	out, _ := json.Marshal(map[string]any{"results": results})
	fmt.Println(string(out))
	if !ok {
		os.Exit(1)
	}
}

func run(req request) []result {
	var results []result
	add := func(check string, err error) {
		r := result{Check: check, OK: err == nil}
		if err != nil {
			r.Error = err.Error()
		}
		results = append(results, r)
	}

	logVerifier, err := note.NewVerifier(req.LogVkey)
	if err != nil {
		add("logVkey", err)
		return results
	}
	add("logVkey", nil)

	// Checkpoints: the log's signature (note.Open), then the body (formats/log).
	checkpoints := make([]*log.Checkpoint, len(req.Checkpoints))
	// The signing time each verified checkpoint states ("" when none), read from the signed text.
	signedTimes := make([]string, len(req.Checkpoints))
	for i, text := range req.Checkpoints {
		cp, err := openCheckpoint([]byte(text), req.Origin, logVerifier)
		if err == nil {
			n, _ := note.Open([]byte(text), note.VerifierList(logVerifier))
			signedTimes[i], err = signedAt(n.Text)
			if err != nil {
				cp = nil
			}
		}
		checkpoints[i] = cp
		add(fmt.Sprintf("checkpoint[%d]", i), err)
		for j, vkey := range req.WitnessVkeys {
			add(fmt.Sprintf("cosignature[%d][%d]", i, j), verifyCosignature([]byte(text), vkey))
		}
	}
	checkpoint := func(i int) (*log.Checkpoint, error) {
		if i < 0 || i >= len(checkpoints) || checkpoints[i] == nil {
			return nil, fmt.Errorf("checkpoint %d is not verified", i)
		}
		return checkpoints[i], nil
	}

	for i, c := range req.Inclusion {
		add(fmt.Sprintf("inclusion[%d]", i), func() error {
			cp, err := checkpoint(c.Checkpoint)
			if err != nil {
				return err
			}
			leaf, err := base64.StdEncoding.DecodeString(c.Leaf)
			if err != nil {
				return err
			}
			hashes, err := decodeHashes(c.Proof)
			if err != nil {
				return err
			}
			return proof.VerifyInclusion(rfc6962.DefaultHasher, c.Index, cp.Size, rfc6962.DefaultHasher.HashLeaf(leaf), hashes, cp.Hash)
		}())
	}

	for i, c := range req.Consistency {
		add(fmt.Sprintf("consistency[%d]", i), func() error {
			from, err := checkpoint(c.From)
			if err != nil {
				return err
			}
			to, err := checkpoint(c.To)
			if err != nil {
				return err
			}
			hashes, err := decodeHashes(c.Proof)
			if err != nil {
				return err
			}
			return proof.VerifyConsistency(rfc6962.DefaultHasher, from.Size, to.Size, hashes, from.Hash, to.Hash)
		}())
	}

	for i, p := range req.TlogProofs {
		add(fmt.Sprintf("tlogProof[%d]", i), func() error {
			var tp tproof.TLogProof
			if err := tp.Unmarshal([]byte(p.Text)); err != nil {
				return err
			}
			cp, err := openCheckpoint(tp.Checkpoint, req.Origin, logVerifier)
			if err != nil {
				return err
			}
			leaf, err := base64.StdEncoding.DecodeString(p.Leaf)
			if err != nil {
				return err
			}
			hashes := make([][]byte, len(tp.Hashes))
			for j := range tp.Hashes {
				hashes[j] = tp.Hashes[j][:]
			}
			return proof.VerifyInclusion(rfc6962.DefaultHasher, tp.Index, cp.Size, rfc6962.DefaultHasher.HashLeaf(leaf), hashes, cp.Hash)
		}())
	}

	for i, s := range req.LeafSets {
		add(fmt.Sprintf("leafSet[%d]", i), func() error {
			cp, err := checkpoint(s.Checkpoint)
			if err != nil {
				return err
			}
			if uint64(len(s.Leaves)) != cp.Size {
				return fmt.Errorf("%d leaves for a checkpoint of size %d", len(s.Leaves), cp.Size)
			}
			rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
			r := rf.NewEmptyRange(0)
			for _, b64 := range s.Leaves {
				leaf, err := base64.StdEncoding.DecodeString(b64)
				if err != nil {
					return err
				}
				if err := r.Append(rfc6962.DefaultHasher.HashLeaf(leaf), nil); err != nil {
					return err
				}
			}
			root, err := r.GetRootHash(nil)
			if err != nil {
				return err
			}
			if cp.Size == 0 {
				root = rfc6962.DefaultHasher.EmptyRoot()
			}
			if !bytes.Equal(root, cp.Hash) {
				return fmt.Errorf("root recomputed from the leaves is %x, the checkpoint says %x", root, cp.Hash)
			}
			return nil
		}())
	}
	for i, p := range req.LeafSetProofs {
		var given []givenLeaf
		add(fmt.Sprintf("leafSetProof[%d]", i), func() error {
			cp, err := checkpoint(p.Checkpoint)
			if err != nil {
				return err
			}
			rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
			r := rf.NewEmptyRange(0)
			gap, leaf := 0, 0
			for r.End() < cp.Size {
				if gap < len(p.Gaps) && p.Gaps[gap].Begin == r.End() {
					g := p.Gaps[gap]
					hashes, err := decodeHashes(g.Hashes)
					if err != nil {
						return err
					}
					gr, err := rf.NewRange(g.Begin, g.End, hashes)
					if err != nil {
						return fmt.Errorf("gap %d: %w", gap, err)
					}
					if err := r.AppendRange(gr, nil); err != nil {
						return fmt.Errorf("gap %d: %w", gap, err)
					}
					gap++
					continue
				}
				if leaf >= len(p.Leaves) {
					return fmt.Errorf("leaf %d is neither given nor in a gap", r.End())
				}
				data, err := base64.StdEncoding.DecodeString(p.Leaves[leaf])
				if err != nil {
					return err
				}
				given = append(given, givenLeaf{index: r.End(), data: data})
				if p.Format2From != nil && r.End() >= *p.Format2From {
					if data, err = headerLeaf(data); err != nil {
						return fmt.Errorf("leaf %d: %w", r.End(), err)
					}
				}
				if err := r.Append(rfc6962.DefaultHasher.HashLeaf(data), nil); err != nil {
					return err
				}
				leaf++
			}
			if gap != len(p.Gaps) || leaf != len(p.Leaves) || r.End() != cp.Size {
				return fmt.Errorf("%d of %d gaps and %d of %d leaves fit a tree of size %d", gap, len(p.Gaps), leaf, len(p.Leaves), cp.Size)
			}
			root, err := r.GetRootHash(nil)
			if err != nil {
				return err
			}
			if !bytes.Equal(root, cp.Hash) {
				return fmt.Errorf("root recomputed from the leaves and gaps is %x, the checkpoint says %x", root, cp.Hash)
			}
			return nil
		}())
		if p.Pack == nil {
			continue
		}
		withDetail := func(check string, detail string, err error) {
			add(check, err)
			results[len(results)-1].Detail = detail
		}
		cp, err := checkpoint(p.Checkpoint)
		if err != nil {
			add(fmt.Sprintf("completeness[%d]", i), err)
			continue
		}
		detail, err := checkCompleteness(p.Pack, given, cp.Size)
		withDetail(fmt.Sprintf("completeness[%d]", i), detail, err)
		times := make([]checkpointTime, 0, len(p.Pack.Checkpoints))
		for _, c := range p.Pack.Checkpoints {
			v, err := checkpoint(c)
			if err != nil {
				times = nil
				break
			}
			times = append(times, checkpointTime{size: v.Size, signedAt: signedTimes[c]})
		}
		if times == nil {
			add(fmt.Sprintf("checkpointGaps[%d]", i), errors.New("a checkpoint of the pack is not verified"))
			continue
		}
		detail, err = checkGaps(p.Pack, given, times)
		withDetail(fmt.Sprintf("checkpointGaps[%d]", i), detail, err)
	}
	return results
}

func openCheckpoint(text []byte, origin string, v note.Verifier) (*log.Checkpoint, error) {
	n, err := note.Open(text, note.VerifierList(v))
	if err != nil {
		return nil, err
	}
	cp := &log.Checkpoint{}
	if _, err := cp.Unmarshal([]byte(n.Text)); err != nil {
		return nil, err
	}
	if cp.Origin != origin {
		return nil, fmt.Errorf("origin %q, expected %q", cp.Origin, origin)
	}
	if len(cp.Hash) != rfc6962.DefaultHasher.Size() {
		return nil, fmt.Errorf("root hash is %d bytes", len(cp.Hash))
	}
	return cp, nil
}

func verifyCosignature(text []byte, vkey string) error {
	v, err := fnote.NewVerifierForCosignatureV1(vkey)
	if err != nil {
		return err
	}
	n, err := note.Open(text, note.VerifierList(v))
	if err != nil {
		return err
	}
	for _, s := range n.Sigs {
		if s.Name == v.Name() && s.Hash == v.KeyHash() {
			return nil
		}
	}
	return errors.New("no cosignature by the witness key")
}

func decodeHashes(b64s []string) ([][]byte, error) {
	out := make([][]byte, len(b64s))
	for i, s := range b64s {
		h, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("proof hash %d: %w", i, err)
		}
		out[i] = h
	}
	return out, nil
}
