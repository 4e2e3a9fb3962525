package cluster

import (
	"encoding/json"
	"net/http"
)

func writeJSONBody(w http.ResponseWriter, v interface{}) {
	enc := json.NewEncoder(w)
	enc.Encode(v)
}
