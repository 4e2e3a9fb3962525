package api

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/skiffhq/skiff/proto"
)

type tableRequest struct {
	includeObject metav1.IncludeObjectPolicy
}

// tableRequested reports whether the Accept header asks for a
// meta.k8s.io Table (what kubectl get asks for) before any plain type.
func tableRequested(r *http.Request) (tableRequest, bool) {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		if params["as"] == "Table" && params["g"] == "meta.k8s.io" && (params["v"] == "v1" || params["v"] == "v1beta1") {
			if mt != "application/json" && mt != "application/yaml" {
				continue
			}
			t := tableRequest{includeObject: metav1.IncludeMetadata}
			switch p := metav1.IncludeObjectPolicy(r.URL.Query().Get("includeObject")); p {
			case metav1.IncludeNone, metav1.IncludeObject:
				t.includeObject = p
			}
			return t, true
		}
		if params["as"] == "" && (mt == "application/json" || mt == "*/*" || mt == "application/yaml") {
			return tableRequest{}, false
		}
	}
	return tableRequest{}, false
}

// printer renders the table columns of one kind: every cell of a row, in
// column order, and optionally the row's conditions.
type printer struct {
	columns    []metav1.TableColumnDefinition
	cells      func(obj proto.Object, now time.Time) []interface{}
	conditions func(obj proto.Object) []metav1.TableRowCondition
}

var nameColumn = metav1.TableColumnDefinition{Name: "Name", Type: "string", Format: "name", Description: metav1.ObjectMeta{}.SwaggerDoc()["name"]}
var ageColumn = metav1.TableColumnDefinition{Name: "Age", Type: "string", Description: metav1.ObjectMeta{}.SwaggerDoc()["creationTimestamp"]}

// genericPrinter prints NAME and AGE, what Kubernetes prints for kinds
// without a dedicated printer.
var genericPrinter = printer{
	columns: []metav1.TableColumnDefinition{nameColumn, ageColumn},
	cells: func(obj proto.Object, now time.Time) []interface{} {
		m, _ := meta.Accessor(obj)
		return []interface{}{m.GetName(), age(m.GetCreationTimestamp(), now)}
	},
}

func printerFor(kind *proto.Kind) printer {
	if p, ok := printers[kind.Resource]; ok {
		return p
	}
	return genericPrinter
}

func toTable(kind *proto.Kind, objs []proto.Object, include metav1.IncludeObjectPolicy, now time.Time) (*metav1.Table, error) {
	p := printerFor(kind)
	t := &metav1.Table{TypeMeta: metav1.TypeMeta{Kind: "Table", APIVersion: "meta.k8s.io/v1"}, ColumnDefinitions: p.columns, Rows: []metav1.TableRow{}}
	for _, obj := range objs {
		row := metav1.TableRow{Cells: p.cells(obj, now)}
		if p.conditions != nil {
			row.Conditions = p.conditions(obj)
		}
		raw, err := rowObject(obj, include)
		if err != nil {
			return nil, apierrors.NewInternalError(err)
		}
		row.Object = raw
		t.Rows = append(t.Rows, row)
	}
	return t, nil
}

func rowObject(obj proto.Object, include metav1.IncludeObjectPolicy) (runtime.RawExtension, error) {
	var v interface{}
	switch include {
	case metav1.IncludeNone:
		return runtime.RawExtension{}, nil
	case metav1.IncludeObject:
		v = obj
	default:
		m, ok := obj.(metav1.ObjectMetaAccessor)
		if !ok {
			return runtime.RawExtension{}, fmt.Errorf("%T has no metadata", obj)
		}
		v = &metav1.PartialObjectMetadata{
			TypeMeta:   metav1.TypeMeta{Kind: "PartialObjectMetadata", APIVersion: "meta.k8s.io/v1"},
			ObjectMeta: *m.GetObjectMeta().(*metav1.ObjectMeta),
		}
	}
	raw, err := json.Marshal(v)
	return runtime.RawExtension{Raw: raw}, err
}

// age formats the time since ts like kubectl does ("5m", "3d4h").
func age(ts metav1.Time, now time.Time) string {
	if ts.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(ts.Time))
}
