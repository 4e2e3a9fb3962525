package api_test

import (
	"bytes"
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/api"
	"github.com/skiffhq/skiff/api/apitest"
	"github.com/skiffhq/skiff/proto"
)

func TestSecretsAreSealedAtRest(t *testing.T) {
	cipher, err := api.NewAESGCM(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	s := apitest.New(t, func(c *api.Config) { c.SecretCipher = cipher })
	ctx := context.Background()
	secrets := s.Client.CoreV1().Secrets("default")
	const plain = "hunter2-never-in-clear"
	w, err := secrets.Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	created, err := secrets.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db",
		Annotations: map[string]string{"kubectl.kubernetes.io/last-applied-configuration": `{"stringData":{"password":"` + plain + `"}}`}},
		Data: map[string][]byte{"password": []byte(plain)}, StringData: map[string]string{"user": "admin"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(created.Data["password"]) != plain || string(created.Data["user"]) != "admin" ||
		created.Annotations["kubectl.kubernetes.io/last-applied-configuration"] != `{"stringData":{"password":"`+plain+`"}}` {
		t.Fatalf("create answered %q %q", created.Data, created.Annotations)
	}
	kind, _ := proto.KindForResource("", "secrets")
	stored, _ := s.Store.Get(kind, "default", "db")
	if v := stored.(*corev1.Secret).Data["password"]; bytes.Contains(v, []byte(plain)) {
		t.Fatalf("the store holds the secret in clear: %q", v)
	}
	var snap bytes.Buffer
	if err := s.Store.WriteSnapshot(&snap); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(snap.Bytes(), []byte(plain)) {
		t.Fatal("a snapshot holds the secret in clear")
	}
	got, err := secrets.Get(ctx, "db", metav1.GetOptions{})
	if err != nil || string(got.Data["password"]) != plain {
		t.Fatalf("get: %v %q", err, got.Data)
	}
	list, err := secrets.List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != 1 || string(list.Items[0].Data["password"]) != plain {
		t.Fatalf("list: %v %+v", err, list)
	}
	ev := <-w.ResultChan()
	if sec, ok := ev.Object.(*corev1.Secret); !ok || string(sec.Data["password"]) != plain {
		t.Fatalf("watch event: %+v", ev.Object)
	}
	again, err := secrets.Update(ctx, got, metav1.UpdateOptions{})
	if err != nil || again.ResourceVersion != got.ResourceVersion {
		t.Fatalf("a no-op update wrote (rv %s -> %s, err %v): sealing must not look like a change", got.ResourceVersion, again.ResourceVersion, err)
	}
}
