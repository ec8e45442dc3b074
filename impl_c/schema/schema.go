// Package schema is a small JSON Schema (draft 2020-12 subset) validator for
// the two schemas of wire_spec (embedded copies, kept equal by a test):
// type, const, enum, pattern, min/maxLength, minimum/maximum, min/maxItems,
// uniqueItems, required, properties, additionalProperties, items,
// propertyNames, $ref, allOf, if/then.
package schema

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"
)

//go:embed manifest.schema.json
var ManifestSchema []byte

//go:embed status.schema.json
var StatusSchema []byte

// Validator validates JSON documents against one schema.
type Validator struct {
	root map[string]any
	re   map[string]*regexp.Regexp
}

// New parses a schema.
func New(schemaJSON []byte) (*Validator, error) {
	var root map[string]any
	if err := json.Unmarshal(schemaJSON, &root); err != nil {
		return nil, err
	}
	return &Validator{root: root, re: map[string]*regexp.Regexp{}}, nil
}

// ParseJSON decodes a document keeping numbers exact.
func ParseJSON(doc []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(doc))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, fmt.Errorf("trailing data after JSON value")
	}
	return v, nil
}

// Validate returns the first violation found, or nil.
func (v *Validator) Validate(doc any) error { return v.check(v.root, doc, "$") }

func (v *Validator) resolve(ref string) map[string]any {
	parts := strings.Split(strings.TrimPrefix(ref, "#/"), "/")
	var cur any = v.root
	for _, p := range parts {
		cur = cur.(map[string]any)[p]
	}
	return cur.(map[string]any)
}

func typeOf(x any) string {
	switch t := x.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	case json.Number:
		if _, err := t.Int64(); err == nil || !strings.ContainsAny(t.String(), ".eE") {
			return "integer"
		}
		f, _ := t.Float64()
		if f == float64(int64(f)) {
			return "integer"
		}
		return "number"
	}
	return "?"
}

func num(x any) (float64, bool) {
	if f, ok := x.(float64); ok {
		return f, true
	}
	n, ok := x.(json.Number)
	if !ok {
		return 0, false
	}
	f, err := n.Float64()
	return f, err == nil
}

func equalJSON(a, b any) bool {
	ja, _ := json.Marshal(normalise(a))
	jb, _ := json.Marshal(normalise(b))
	return bytes.Equal(ja, jb)
}

func normalise(x any) any {
	switch t := x.(type) {
	case json.Number:
		f, _ := t.Float64()
		return f
	case float64:
		return t
	case int:
		return float64(t)
	case []any:
		o := make([]any, len(t))
		for i := range t {
			o[i] = normalise(t[i])
		}
		return o
	case map[string]any:
		o := map[string]any{}
		for k, e := range t {
			o[k] = normalise(e)
		}
		return o
	}
	return x
}

func (v *Validator) check(s map[string]any, x any, path string) error {
	if ref, ok := s["$ref"].(string); ok {
		if err := v.check(v.resolve(ref), x, path); err != nil {
			return err
		}
	}
	if t, ok := s["type"]; ok {
		want := []string{}
		switch tt := t.(type) {
		case string:
			want = append(want, tt)
		case []any:
			for _, e := range tt {
				want = append(want, e.(string))
			}
		}
		got := typeOf(x)
		ok := false
		for _, w := range want {
			if w == got || (w == "number" && got == "integer") {
				ok = true
			}
		}
		if !ok {
			return fmt.Errorf("%s: type %s, want %v", path, got, want)
		}
	}
	if c, ok := s["const"]; ok && !equalJSON(c, x) {
		return fmt.Errorf("%s: must be %v", path, c)
	}
	if e, ok := s["enum"].([]any); ok {
		found := false
		for _, c := range e {
			if equalJSON(c, x) {
				found = true
			}
		}
		if !found {
			return fmt.Errorf("%s: not one of %v", path, e)
		}
	}
	if str, ok := x.(string); ok {
		if p, ok := s["pattern"].(string); ok {
			re := v.re[p]
			if re == nil {
				re = regexp.MustCompile(p)
				v.re[p] = re
			}
			if !re.MatchString(str) {
				return fmt.Errorf("%s: %q does not match %s", path, str, p)
			}
		}
		n := float64(utf8.RuneCountInString(str))
		if m, ok := num(s["minLength"]); ok && n < m {
			return fmt.Errorf("%s: shorter than %v", path, m)
		}
		if m, ok := num(s["maxLength"]); ok && n > m {
			return fmt.Errorf("%s: longer than %v", path, m)
		}
	}
	if f, ok := num(x); ok {
		if m, ok := num(s["minimum"]); ok && f < m {
			return fmt.Errorf("%s: below minimum %v", path, m)
		}
		if m, ok := num(s["maximum"]); ok && f > m {
			return fmt.Errorf("%s: above maximum %v", path, m)
		}
	}
	if arr, ok := x.([]any); ok {
		if m, ok := num(s["minItems"]); ok && float64(len(arr)) < m {
			return fmt.Errorf("%s: fewer than %v items", path, m)
		}
		if m, ok := num(s["maxItems"]); ok && float64(len(arr)) > m {
			return fmt.Errorf("%s: more than %v items", path, m)
		}
		if u, ok := s["uniqueItems"].(bool); ok && u {
			for i := range arr {
				for j := i + 1; j < len(arr); j++ {
					if equalJSON(arr[i], arr[j]) {
						return fmt.Errorf("%s: duplicate items", path)
					}
				}
			}
		}
		if it, ok := s["items"].(map[string]any); ok {
			for i, e := range arr {
				if err := v.check(it, e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return err
				}
			}
		}
	}
	if obj, ok := x.(map[string]any); ok {
		if req, ok := s["required"].([]any); ok {
			for _, r := range req {
				if _, ok := obj[r.(string)]; !ok {
					return fmt.Errorf("%s: missing %q", path, r)
				}
			}
		}
		props, _ := s["properties"].(map[string]any)
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if ps, ok := props[k].(map[string]any); ok {
				if err := v.check(ps, obj[k], path+"."+k); err != nil {
					return err
				}
				continue
			}
			switch ap := s["additionalProperties"].(type) {
			case bool:
				if !ap {
					return fmt.Errorf("%s: unexpected property %q", path, k)
				}
			case map[string]any:
				if err := v.check(ap, obj[k], path+"."+k); err != nil {
					return err
				}
			}
		}
		if pn, ok := s["propertyNames"].(map[string]any); ok {
			for _, k := range keys {
				if err := v.check(pn, k, path+"."+k); err != nil {
					return err
				}
			}
		}
	}
	if all, ok := s["allOf"].([]any); ok {
		for _, sub := range all {
			if err := v.check(sub.(map[string]any), x, path); err != nil {
				return err
			}
		}
	}
	if ifs, ok := s["if"].(map[string]any); ok {
		if v.check(ifs, x, path) == nil {
			if th, ok := s["then"].(map[string]any); ok {
				if err := v.check(th, x, path); err != nil {
					return err
				}
			}
		} else if el, ok := s["else"].(map[string]any); ok {
			if err := v.check(el, x, path); err != nil {
				return err
			}
		}
	}
	return nil
}
