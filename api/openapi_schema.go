package api

import (
	"reflect"
	"strings"
)

// obj is a JSON object under construction.
type obj = map[string]interface{}

// schemaGen turns Go API types into OpenAPI schemas by reflection: property
// names from json tags, descriptions from the types' SwaggerDoc methods,
// x-kubernetes-patch-strategy and -merge-key from the patchStrategy and
// patchMergeKey struct tags (what strategic merge patch reads), model names
// from OpenAPIModelName. The same generator writes OpenAPI v2 definitions
// and v3 component schemas; only references and a few types differ.
type schemaGen struct {
	v3   bool
	defs obj // model name -> schema
}

func newSchemaGen(v3 bool) *schemaGen { return &schemaGen{v3: v3, defs: obj{}} }

func (g *schemaGen) ref(name string) obj {
	if g.v3 {
		return obj{"$ref": "#/components/schemas/" + name}
	}
	return obj{"$ref": "#/definitions/" + name}
}

// modelName is the OpenAPI name of a named type, e.g.
// io.k8s.api.core.v1.Pod for k8s.io/api/core/v1.Pod.
func modelName(t reflect.Type) string {
	if m, ok := reflect.New(t).Elem().Interface().(interface{ OpenAPIModelName() string }); ok {
		return m.OpenAPIModelName()
	}
	host, rest, _ := strings.Cut(t.PkgPath(), "/")
	parts := strings.Split(host, ".")
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	return strings.Join(parts, ".") + "." + strings.ReplaceAll(rest, "/", ".") + "." + t.Name()
}

// openAPIType is implemented by types with a custom wire form (Time,
// Quantity, IntOrString...).
type openAPIType interface{ OpenAPISchemaType() []string }

// schemaFor returns the schema of a field or item of type t: inline for
// primitives, arrays and maps, a reference for structs.
func (g *schemaGen) schemaFor(t reflect.Type) obj {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if _, special := reflect.New(t).Elem().Interface().(openAPIType); special || t.Kind() == reflect.Struct {
		return g.ref(g.define(t))
	}
	switch t.Kind() {
	case reflect.String:
		return obj{"type": "string"}
	case reflect.Bool:
		return obj{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Uint8, reflect.Uint16, reflect.Uint32:
		return obj{"type": "integer", "format": "int32"}
	case reflect.Int64, reflect.Uint64:
		return obj{"type": "integer", "format": "int64"}
	case reflect.Float32, reflect.Float64:
		return obj{"type": "number", "format": "double"}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return obj{"type": "string", "format": "byte"}
		}
		return obj{"type": "array", "items": g.schemaFor(t.Elem())}
	case reflect.Map:
		return obj{"type": "object", "additionalProperties": g.schemaFor(t.Elem())}
	}
	return obj{}
}

// define registers the schema of a named type and returns its name.
func (g *schemaGen) define(t reflect.Type) string {
	name := modelName(t)
	if _, ok := g.defs[name]; ok {
		return name
	}
	g.defs[name] = obj{} // placeholder: types may refer to themselves
	g.defs[name] = g.build(t)
	return name
}

func (g *schemaGen) build(t reflect.Type) obj {
	zero := reflect.New(t).Elem().Interface()
	docs := swaggerDoc(zero)
	if special, ok := zero.(openAPIType); ok {
		s := obj{"type": special.OpenAPISchemaType()[0]}
		if f, ok := zero.(interface{ OpenAPISchemaFormat() string }); ok && f.OpenAPISchemaFormat() != "" {
			s["format"] = f.OpenAPISchemaFormat()
		}
		if oneOf, ok := zero.(interface{ OpenAPIV3OneOfTypes() []string }); ok && g.v3 {
			delete(s, "type")
			var alts []interface{}
			for _, typ := range oneOf.OpenAPIV3OneOfTypes() {
				alts = append(alts, obj{"type": typ})
			}
			s["oneOf"] = alts
		}
		return withDescription(s, docs[""])
	}
	props, required := obj{}, []string{}
	g.addFields(t, props, &required)
	s := obj{"type": "object", "properties": props}
	if len(required) > 0 {
		s["required"] = required
	}
	return withDescription(s, docs[""])
}

// addFields adds the properties of struct t (and of its inlined structs).
func (g *schemaGen) addFields(t reflect.Type, props obj, required *[]string) {
	docs := swaggerDoc(reflect.New(t).Elem().Interface())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, hasTag := f.Tag.Lookup("json")
		name, opts, _ := strings.Cut(tag, ",")
		if !f.IsExported() || tag == "-" {
			continue
		}
		if (f.Anonymous && !hasTag) || strings.Contains(opts, "inline") {
			g.addFields(f.Type, props, required)
			continue
		}
		if name == "" {
			name = f.Name
		}
		p := g.schemaFor(f.Type)
		if _, isRef := p["$ref"]; isRef && docs[name] != "" && g.v3 {
			p = obj{"allOf": []interface{}{p}} // OpenAPI 3.0 ignores siblings of $ref
		}
		p = withDescription(p, docs[name])
		if s := f.Tag.Get("patchStrategy"); s != "" {
			p["x-kubernetes-patch-strategy"] = s
		}
		if k := f.Tag.Get("patchMergeKey"); k != "" {
			p["x-kubernetes-patch-merge-key"] = k
		}
		props[name] = p
		if !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") && f.Type.Kind() != reflect.Pointer {
			*required = append(*required, name)
		}
	}
}

func swaggerDoc(v interface{}) map[string]string {
	if d, ok := v.(interface{ SwaggerDoc() map[string]string }); ok {
		return d.SwaggerDoc()
	}
	return nil
}

func withDescription(s obj, d string) obj {
	if d != "" {
		s["description"] = d
	}
	return s
}
