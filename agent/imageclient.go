package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiffhq/skiff/agent/agentapi"
)

// ImageClient manages the images of nodes through the API server's
// nodes/{name}/proxy subresource, which forwards to the node's agent. It
// backs `skiff image load|ls|rm`:
//
//	POST   /api/v1/nodes/{node}/proxy/images/load   body: the archive
//	GET    /api/v1/nodes/{node}/proxy/images
//	DELETE /api/v1/nodes/{node}/proxy/images/{ref}
//
// Responses are JSON ([]Image) or a metav1.Status on error.
type ImageClient struct {
	client kubernetes.Interface
}

// NewImageClient returns an ImageClient for the API at cfg.
func NewImageClient(cfg *rest.Config) (*ImageClient, error) {
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("image client: %w", err)
	}
	return &ImageClient{client: c}, nil
}

// NodeImages is one node's answer in a multi-node call.
type NodeImages struct {
	Node   string
	Images []Image
	Err    error
}

func (c *ImageClient) proxy(verb, node string, path ...string) *rest.Request {
	return c.client.CoreV1().RESTClient().Verb(verb).
		AbsPath(append([]string{"/api/v1/nodes", node, "proxy"}, path...)...)
}

// Load imports an image archive (OCI layout or docker save tar) on node.
func (c *ImageClient) Load(ctx context.Context, node string, archive io.Reader) ([]Image, error) {
	raw, err := c.proxy("POST", node, agentapi.ImageLoadPath).Body(archive).Do(ctx).Raw()
	if err != nil {
		return nil, fmt.Errorf("load image on %s: %w", node, err)
	}
	return decodeImages(raw)
}

// List returns node's images.
func (c *ImageClient) List(ctx context.Context, node string) ([]Image, error) {
	raw, err := c.proxy("GET", node, agentapi.ImagesPath).Do(ctx).Raw()
	if err != nil {
		return nil, fmt.Errorf("list images on %s: %w", node, err)
	}
	return decodeImages(raw)
}

// Remove deletes image ref from node; an absent image is not an error, an
// image a live container uses is (409).
func (c *ImageClient) Remove(ctx context.Context, node, ref string) error {
	if err := c.proxy("DELETE", node, agentapi.ImagePath(ref)).Do(ctx).Error(); err != nil {
		return fmt.Errorf("remove image %s on %s: %w", ref, node, err)
	}
	return nil
}

// Nodes returns the names of every node, sorted.
func (c *ImageClient) Nodes(ctx context.Context) ([]string, error) {
	list, err := c.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	var out []string
	for _, n := range list.Items {
		out = append(out, n.Name)
	}
	slices.Sort(out)
	return out, nil
}

// LoadEverywhere loads the archive on every node (open is called once per
// node), in parallel, and reports per node; err joins the failures.
func (c *ImageClient) LoadEverywhere(ctx context.Context, open func() (io.ReadCloser, error)) ([]NodeImages, error) {
	nodes, err := c.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]NodeImages, len(nodes))
	var wg sync.WaitGroup
	for i, node := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i].Node = node
			r, err := open()
			if err != nil {
				out[i].Err = err
				return
			}
			defer r.Close()
			out[i].Images, out[i].Err = c.Load(ctx, node, r)
		}()
	}
	wg.Wait()
	var errs []error
	for _, r := range out {
		if r.Err != nil {
			errs = append(errs, r.Err)
		}
	}
	return out, errors.Join(errs...)
}

func decodeImages(raw []byte) ([]Image, error) {
	var imgs []Image
	if err := json.Unmarshal(raw, &imgs); err != nil {
		return nil, fmt.Errorf("decode images: %w", err)
	}
	return imgs, nil
}
