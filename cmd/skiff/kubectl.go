package main

import (
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/kubectl/pkg/cmd/annotate"
	"k8s.io/kubectl/pkg/cmd/apiresources"
	"k8s.io/kubectl/pkg/cmd/apply"
	"k8s.io/kubectl/pkg/cmd/config"
	"k8s.io/kubectl/pkg/cmd/create"
	"k8s.io/kubectl/pkg/cmd/delete"
	"k8s.io/kubectl/pkg/cmd/describe"
	"k8s.io/kubectl/pkg/cmd/edit"
	"k8s.io/kubectl/pkg/cmd/exec"
	"k8s.io/kubectl/pkg/cmd/explain"
	"k8s.io/kubectl/pkg/cmd/get"
	"k8s.io/kubectl/pkg/cmd/label"
	"k8s.io/kubectl/pkg/cmd/logs"
	"k8s.io/kubectl/pkg/cmd/patch"
	"k8s.io/kubectl/pkg/cmd/portforward"
	"k8s.io/kubectl/pkg/cmd/rollout"
	"k8s.io/kubectl/pkg/cmd/scale"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/cmd/wait"
)

// addResourceCommands adds kubectl's own resource commands, so the skiff CLI
// behaves exactly like kubectl against a skiff cluster (and keeps the API
// honest about kubectl compatibility).
func addResourceCommands(root *cobra.Command, f cmdutil.Factory, flags *genericclioptions.ConfigFlags, s genericiooptions.IOStreams) {
	root.AddCommand(
		apply.NewCmdApply("skiff", f, s),
		get.NewCmdGet("skiff", f, s),
		describe.NewCmdDescribe("skiff", f, s),
		delete.NewCmdDelete(f, s),
		create.NewCmdCreate(f, s),
		edit.NewCmdEdit(f, s),
		patch.NewCmdPatch(f, s),
		label.NewCmdLabel(f, s),
		annotate.NewCmdAnnotate("skiff", f, s),
		scale.NewCmdScale(f, s),
		rollout.NewCmdRollout("skiff", f, s),
		logs.NewCmdLogs(f, s),
		exec.NewCmdExec(f, s),
		portforward.NewCmdPortForward(f, s),
		wait.NewCmdWait(f, s),
		explain.NewCmdExplain("skiff", f, s),
		apiresources.NewCmdAPIResources(f, s),
		apiresources.NewCmdAPIVersions(f, s),
		config.NewCmdConfig(f, clientcmd.NewDefaultPathOptions(), s),
	)
}
