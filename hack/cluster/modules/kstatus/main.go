// kstatus prints what sigs.k8s.io/cli-utils' kstatus library (the status
// computation Flux, kpt and cli-utils' apply use) reads from Kubernetes objects.
//
// Input on stdin: one JSON object, or a JSON list of objects (e.g. the items of
// `kubectl get bpe -o json`). Output on stdout: a JSON list with, for each
// object, its name, kstatus's Status (InProgress, Current, Failed, ...) and
// message. Nothing of our own decides the status: status.Compute does.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type result struct {
	Name    string `json:"name"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

func main() {
	raw, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kstatus: reading stdin:", err)
		os.Exit(2)
	}
	var objects []map[string]interface{}
	// apimachinery's decoder keeps integers int64, as the API server's objects have them.
	if err := utiljson.Unmarshal(raw, &objects); err != nil {
		var one map[string]interface{}
		if err2 := utiljson.Unmarshal(raw, &one); err2 != nil {
			fmt.Fprintln(os.Stderr, "kstatus: stdin is neither a JSON object nor a list:", err)
			os.Exit(2)
		}
		if items, ok := one["items"].([]interface{}); ok {
			for _, item := range items {
				if m, ok := item.(map[string]interface{}); ok {
					objects = append(objects, m)
				}
			}
		} else {
			objects = append(objects, one)
		}
	}
	out := []result{}
	for _, obj := range objects {
		u := &unstructured.Unstructured{Object: obj}
		res, err := status.Compute(u)
		if err != nil {
			fmt.Fprintf(os.Stderr, "kstatus: %s: %v\n", u.GetName(), err)
			os.Exit(1)
		}
		out = append(out, result{Name: u.GetName(), Status: res.Status.String(), Message: res.Message})
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		os.Exit(1)
	}
}
