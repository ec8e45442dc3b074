// Package conformance runs the SPEC 17 vectors of wire_spec/vectors
// (generated areas and external files) against this implementation.
package conformance

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Result of one case.
type Result struct {
	Path string
	Err  error
}

type caseFn func(dir string, meta map[string]any) error

var handlers = map[string]caseFn{}

func register(area, handler string, f caseFn) { handlers[area+"/"+handler] = f }

// Run walks every PATH and runs every case found.
func Run(paths []string) []Result {
	var out []Result
	seen := map[string]bool{}
	for _, p := range paths {
		_ = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				out = append(out, Result{path, err})
				return nil
			}
			if seen[path] {
				return nil
			}
			seen[path] = true
			if d.IsDir() {
				if d.Name() == "generator" || d.Name() == "formats" || d.Name() == "LICENSES" || d.Name() == "schemas" {
					return filepath.SkipDir
				}
				if _, err := os.Stat(filepath.Join(path, "meta.json")); err == nil {
					out = append(out, runCase(path))
					return filepath.SkipDir
				}
				return nil
			}
			if strings.HasSuffix(path, ".json") && (inExternal(path) || knownExternal[filepath.Base(path)]) {
				out = append(out, runExternal(path)...)
			}
			return nil
		})
	}
	return out
}

var knownExternal = map[string]bool{"noise_xx_ik_kk_25519_chachapoly.json": true, "speccheck_cases.json": true,
	"rfc8032_ed25519.json": true, "ed25519_test.json": true, "x25519_test.json": true, "chacha20_poly1305_test.json": true,
	"rfc6962_tree_hashes.json": true}

func inExternal(path string) bool {
	abs, _ := filepath.Abs(path)
	return strings.Contains(filepath.ToSlash(abs), "/external/")
}

func runCase(dir string) (res Result) {
	res.Path = dir
	defer func() {
		if r := recover(); r != nil {
			res.Err = fmt.Errorf("panic: %v", r)
		}
	}()
	abs, _ := filepath.Abs(dir)
	parts := strings.Split(filepath.ToSlash(abs), "/")
	if len(parts) < 4 {
		res.Err = fmt.Errorf("cannot tell area/handler")
		return
	}
	area, handler := parts[len(parts)-4], parts[len(parts)-3]
	var meta map[string]any
	if err := readJSON(filepath.Join(dir, "meta.json"), &meta); err != nil {
		res.Err = err
		return
	}
	f := handlers[area+"/"+handler]
	if f == nil && area == "codec" {
		f = codecCase
	}
	if f == nil {
		res.Err = fmt.Errorf("no handler for %s/%s", area, handler)
		return
	}
	res.Err = f(dir, meta)
	return
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	return d.Decode(v)
}

func readFile(dir, name string) []byte {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		panic(err)
	}
	return b
}

func hx(s any) []byte {
	str, _ := s.(string)
	b, err := hex.DecodeString(str)
	if err != nil {
		panic(fmt.Sprintf("bad hex %q", str))
	}
	return b
}

func num(v any) uint64 {
	n, ok := v.(json.Number)
	if !ok {
		panic(fmt.Sprintf("not a number: %v", v))
	}
	var u uint64
	fmt.Sscan(n.String(), &u)
	return u
}

func canonJSON(v any) string {
	b, _ := json.Marshal(v)
	var x any
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	_ = d.Decode(&x)
	b, _ = json.Marshal(x)
	return string(b)
}

func sortedKeys(m map[string]any) []string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	sort.Strings(k)
	return k
}

func wantAccept(meta map[string]any) bool {
	v, _ := meta["verdict"].(string)
	return v == "accept" || v == "equal" || strings.Contains(v, "verifies") || strings.Contains(v, "accept")
}
