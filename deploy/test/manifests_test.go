package deploytest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// rendered is `kubectl kustomize deploy/`, decoded into the Kubernetes API types.
type rendered struct {
	daemonSet  *appsv1.DaemonSet
	services   []*corev1.Service
	configMaps map[string]*corev1.ConfigMap
	cardinal   *corev1.Container // the DaemonSet's cardinal container
	config     cardinalConfig    // the configuration file it is started with
	configPath string
}

// cardinalConfig is what the checks read of cardinal's configuration file.
type cardinalConfig struct {
	Server struct {
		ListenAddr  string `json:"listen_addr"`
		MemoryLimit string `json:"memory_limit"`
	} `json:"server"`
	RuleFiles []string `json:"rule_files"`
	WAL       *struct {
		Dir string `json:"dir"`
	} `json:"wal"`
	Cluster *struct {
		Name string `json:"name"`
		DNS  struct {
			Name string `json:"name"`
			Type string `json:"type"`
			Port int    `json:"port"`
		} `json:"dns"`
		LeaveAfter string `json:"leave_after"`
	} `json:"cluster"`
}

// renderDeploy renders deploy/ as kubectl kustomize does (kustomize's own library, offline)
// and decodes each object strictly: an unknown or misspelt field fails, as kubectl apply
// --validate=strict would.
func renderDeploy(t *testing.T) *rendered {
	t.Helper()
	resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), deployDir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", deployDir, err)
	}
	r := &rendered{configMaps: map[string]*corev1.ConfigMap{}}
	for _, res := range resources.Resources() {
		y, err := res.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		what := res.GetKind() + " " + res.GetName()
		var obj interface{ GetNamespace() string }
		switch gvk := res.GetApiVersion() + " " + res.GetKind(); gvk {
		case "apps/v1 DaemonSet":
			if r.daemonSet != nil {
				t.Errorf("two DaemonSets")
			}
			r.daemonSet = &appsv1.DaemonSet{}
			obj = r.daemonSet
		case "v1 Service":
			s := &corev1.Service{}
			r.services = append(r.services, s)
			obj = s
		case "v1 ConfigMap":
			c := &corev1.ConfigMap{}
			r.configMaps[res.GetName()] = c
			obj = c
		default:
			t.Fatalf("%s: %s is not a kind this test decodes: add its type here", what, gvk)
		}
		if err := yaml.UnmarshalStrict(y, obj); err != nil {
			t.Fatalf("%s does not decode strictly into the Kubernetes API type: %v\n%s", what, err, y)
		}
		if obj.GetNamespace() == "" {
			t.Errorf("%s has no namespace", what)
		}
	}
	if r.daemonSet == nil {
		t.Fatal("no DaemonSet rendered")
	}
	for i := range r.daemonSet.Spec.Template.Spec.Containers {
		if c := &r.daemonSet.Spec.Template.Spec.Containers[i]; c.Name == "cardinal" {
			r.cardinal = c
		}
	}
	if r.cardinal == nil {
		t.Fatal("the DaemonSet has no container named cardinal")
	}
	r.configPath = flagValue(r.cardinal, "config.file")
	if r.configPath == "" {
		t.Fatal("the cardinal container has no --config.file argument")
	}
	data, _, err := r.mountedFile(r.configPath)
	if err != nil {
		t.Fatalf("--config.file=%s: %v", r.configPath, err)
	}
	if err := yaml.Unmarshal([]byte(data), &r.config); err != nil {
		t.Fatalf("%s: %v", r.configPath, err)
	}
	return r
}

// flagValue returns the value of --name=value in the container's arguments.
func flagValue(c *corev1.Container, name string) string {
	for _, a := range append(slices.Clone(c.Command), c.Args...) {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
	}
	return ""
}

// mountFor returns the cardinal container's volume mount that holds path, and its volume.
func (r *rendered) mountFor(p string) (*corev1.VolumeMount, *corev1.Volume) {
	var best *corev1.VolumeMount
	for i, m := range r.cardinal.VolumeMounts {
		if (p == m.MountPath || strings.HasPrefix(p, strings.TrimSuffix(m.MountPath, "/")+"/")) &&
			(best == nil || len(m.MountPath) > len(best.MountPath)) {
			best = &r.cardinal.VolumeMounts[i]
		}
	}
	if best == nil {
		return nil, nil
	}
	for i, v := range r.daemonSet.Spec.Template.Spec.Volumes {
		if v.Name == best.Name {
			return best, &r.daemonSet.Spec.Template.Spec.Volumes[i]
		}
	}
	return best, nil
}

// mountedFile returns the content of a file the pod sees from a ConfigMap, and the mount.
// It refuses a subPath mount: the kubelet never updates those, so a changed ConfigMap would
// not reach cardinal's reload.
func (r *rendered) mountedFile(p string) (string, *corev1.VolumeMount, error) {
	m, v := r.mountFor(p)
	if m == nil || v == nil {
		return "", nil, fmt.Errorf("no volume of the pod is mounted at %s", p)
	}
	if m.SubPath != "" || m.SubPathExpr != "" {
		return "", m, fmt.Errorf("%s is mounted with subPath %q: ConfigMap updates never reach a subPath mount; mount the directory", p, m.SubPath)
	}
	if v.ConfigMap == nil {
		return "", m, fmt.Errorf("%s: volume %s is not a ConfigMap", p, v.Name)
	}
	cm, ok := r.configMaps[v.ConfigMap.Name]
	if !ok {
		return "", m, fmt.Errorf("%s: volume %s names ConfigMap %s, which deploy/ does not define", p, v.Name, v.ConfigMap.Name)
	}
	rel := strings.TrimPrefix(strings.TrimPrefix(p, m.MountPath), "/")
	key := rel
	if len(v.ConfigMap.Items) > 0 {
		key = ""
		for _, it := range v.ConfigMap.Items {
			if it.Path == rel {
				key = it.Key
			}
		}
	}
	data, ok := cm.Data[key]
	if !ok {
		return "", m, fmt.Errorf("%s: ConfigMap %s has no key for %s", p, cm.Name, rel)
	}
	return data, m, nil
}

// volumeFiles returns the paths of the files a ConfigMap volume shows at its mount.
func (r *rendered) volumeFiles(m *corev1.VolumeMount, v *corev1.Volume) []string {
	var files []string
	if len(v.ConfigMap.Items) > 0 {
		for _, it := range v.ConfigMap.Items {
			files = append(files, path.Join(m.MountPath, it.Path))
		}
		return files
	}
	for key := range r.configMaps[v.ConfigMap.Name].Data {
		files = append(files, path.Join(m.MountPath, key))
	}
	return files
}

// manifestChecks are what must hold of the rendered manifests, one named check each; a new
// requirement (the headless Service for peers, say) is a new entry.
var manifestChecks = []struct {
	name  string
	check func(t *testing.T, r *rendered)
}{
	{"probes_on_ready_and_healthy", func(t *testing.T, r *rendered) {
		_, port, err := net.SplitHostPort(r.config.Server.ListenAddr)
		if w := flagValue(r.cardinal, "web.listen-address"); w != "" {
			_, port, err = net.SplitHostPort(w)
		}
		if err != nil {
			t.Fatalf("cardinal's listen address: %v", err)
		}
		for _, p := range []struct {
			kind  string
			probe *corev1.Probe
			path  string
		}{{"readiness", r.cardinal.ReadinessProbe, "/-/ready"}, {"liveness", r.cardinal.LivenessProbe, "/-/healthy"}} {
			if p.probe == nil || p.probe.HTTPGet == nil {
				t.Errorf("no HTTP %s probe", p.kind)
				continue
			}
			if p.probe.HTTPGet.Path != p.path {
				t.Errorf("%s probe on %s, want %s", p.kind, p.probe.HTTPGet.Path, p.path)
			}
			if got := containerPort(r.cardinal, p.probe.HTTPGet.Port); strconv.Itoa(got) != port {
				t.Errorf("%s probe on port %d, cardinal listens on %s", p.kind, got, port)
			}
		}
	}},
	{"resources_and_gomemlimit", func(t *testing.T, r *rendered) {
		res := r.cardinal.Resources
		limit, ok := res.Limits[corev1.ResourceMemory]
		if !ok {
			t.Fatal("no memory limit: GOMEMLIMIT and the OOM killer need one")
		}
		for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if _, ok := res.Requests[name]; !ok {
				t.Errorf("no %s request", name)
			}
		}
		var gomemlimit *corev1.EnvVar
		for i, e := range r.cardinal.Env {
			if e.Name == "GOMEMLIMIT" {
				gomemlimit = &r.cardinal.Env[i]
			}
		}
		if gomemlimit == nil || gomemlimit.ValueFrom == nil || gomemlimit.ValueFrom.ResourceFieldRef == nil ||
			gomemlimit.ValueFrom.ResourceFieldRef.Resource != "limits.memory" ||
			!slices.Contains([]string{"", r.cardinal.Name}, gomemlimit.ValueFrom.ResourceFieldRef.ContainerName) {
			t.Errorf("GOMEMLIMIT is not the container's memory limit: %+v", gomemlimit)
		}
		if s := r.config.Server.MemoryLimit; s != "" {
			set, err := parseByteSize(s)
			if err != nil {
				t.Fatalf("server.memory_limit: %v", err)
			}
			if set <= 0 || set >= limit.Value() {
				t.Errorf("server.memory_limit %s is not below the container's memory limit %s: the receiver would never refuse before the OOM kill", s, limit.String())
			}
		}
	}},
	{"non_root", func(t *testing.T, r *rendered) {
		pod := r.daemonSet.Spec.Template.Spec
		sc := r.cardinal.SecurityContext
		runAsNonRoot, uid := false, int64(-1)
		if pod.SecurityContext != nil {
			if pod.SecurityContext.RunAsNonRoot != nil {
				runAsNonRoot = *pod.SecurityContext.RunAsNonRoot
			}
			if pod.SecurityContext.RunAsUser != nil {
				uid = *pod.SecurityContext.RunAsUser
			}
		}
		if sc != nil && sc.RunAsNonRoot != nil {
			runAsNonRoot = *sc.RunAsNonRoot
		}
		if sc != nil && sc.RunAsUser != nil {
			uid = *sc.RunAsUser
		}
		if !runAsNonRoot || uid <= 0 {
			t.Errorf("cardinal runs with runAsNonRoot %v, runAsUser %d: want true and a non-zero uid", runAsNonRoot, uid)
		}
		if want := dockerfileUser(t); strconv.FormatInt(uid, 10) != want {
			t.Errorf("runAsUser %d, the Dockerfile's USER %s: keep them the same", uid, want)
		}
		for _, c := range append(slices.Clone(pod.InitContainers), pod.Containers...) {
			s := c.SecurityContext
			if s == nil || s.AllowPrivilegeEscalation == nil || *s.AllowPrivilegeEscalation ||
				s.Capabilities == nil || !slices.Contains(s.Capabilities.Drop, "ALL") {
				t.Errorf("container %s: want allowPrivilegeEscalation false and every capability dropped", c.Name)
			}
		}
	}},
	{"read_only_root_filesystem", func(t *testing.T, r *rendered) {
		pod := r.daemonSet.Spec.Template.Spec
		for _, c := range append(slices.Clone(pod.InitContainers), pod.Containers...) {
			if c.SecurityContext == nil || c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
				t.Errorf("container %s: the root filesystem is writable", c.Name)
			}
		}
	}},
	{"config_mounted_as_a_directory", func(t *testing.T, r *rendered) {
		// The config file itself was read through mountedFile, which refuses subPath.
		if len(r.config.RuleFiles) == 0 {
			t.Errorf("%s has no rule_files: the rules ConfigMap is not used", r.configPath)
		}
		for _, glob := range r.config.RuleFiles {
			m, v := r.mountFor(glob)
			if m == nil || v == nil || v.ConfigMap == nil {
				t.Errorf("rule_files %s: not on a ConfigMap volume", glob)
				continue
			}
			if m.SubPath != "" {
				t.Errorf("rule_files %s: mounted with subPath, so updates never arrive", glob)
			}
			matched := false
			for _, file := range r.volumeFiles(m, v) {
				if ok, _ := path.Match(glob, file); ok {
					matched = true
				}
			}
			if !matched {
				t.Errorf("rule_files %s matches no file of ConfigMap %s", glob, v.ConfigMap.Name)
			}
		}
		for _, m := range r.cardinal.VolumeMounts {
			if m.SubPath != "" {
				t.Errorf("volume %s is mounted with subPath %s: the kubelet never updates it", m.Name, m.SubPath)
			}
		}
	}},
	{"wal_on_a_volume_that_outlives_the_pod", func(t *testing.T, r *rendered) {
		if r.config.WAL == nil || r.config.WAL.Dir == "" {
			t.Fatalf("%s has no wal block: a restart would lose every open window", r.configPath)
		}
		dir := r.config.WAL.Dir
		if !path.IsAbs(dir) {
			dir = path.Join(path.Dir(r.configPath), dir)
		}
		m, v := r.mountFor(dir)
		if m == nil || v == nil {
			t.Fatalf("wal.dir %s is on the container's read-only root filesystem", dir)
		}
		if m.ReadOnly {
			t.Errorf("wal.dir %s: volume %s is mounted read-only", dir, m.Name)
		}
		if v.HostPath == nil && v.PersistentVolumeClaim == nil && v.Ephemeral == nil {
			t.Errorf("wal.dir %s: volume %s dies with the pod (want hostPath or a PersistentVolumeClaim)", dir, v.Name)
		}
		grace := r.daemonSet.Spec.Template.Spec.TerminationGracePeriodSeconds
		timeout := flagValue(r.cardinal, "shutdown.timeout")
		if timeout == "" {
			timeout = "30s"
		}
		d, err := parseSeconds(timeout)
		if err != nil {
			t.Fatalf("--shutdown.timeout: %v", err)
		}
		if grace == nil || float64(*grace) <= d {
			t.Errorf("terminationGracePeriodSeconds %d is not longer than --shutdown.timeout %s: the kubelet would kill cardinal before its shutdown checkpoint", ptrValue(grace), timeout)
		}
	}},
	{"config_passes_cardinal_check_config", func(t *testing.T, r *rendered) {
		// Lay out every ConfigMap file where the pod sees it, under a temporary root, and
		// have cardinal check the configuration exactly as its start-up would.
		root := t.TempDir()
		rebase := func(s string) string {
			for _, m := range r.cardinal.VolumeMounts {
				s = strings.ReplaceAll(s, m.MountPath, filepath.Join(root, m.MountPath))
			}
			return s
		}
		for _, m := range r.cardinal.VolumeMounts {
			_, v := r.mountFor(m.MountPath)
			if v == nil || v.ConfigMap == nil {
				continue
			}
			for _, file := range r.volumeFiles(&m, v) {
				data, _, err := r.mountedFile(file)
				if err != nil {
					t.Fatal(err)
				}
				dst := filepath.Join(root, file)
				if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(dst, []byte(rebase(data)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		out, err := exec.Command(cardinalBinary(t), "check", "config", filepath.Join(root, r.configPath)).CombinedOutput()
		if err != nil {
			t.Errorf("cardinal check config on the ConfigMap's %s: %v\n%s", r.configPath, err, out)
		}
	}},
	{"service_reaches_the_node_local_pod", func(t *testing.T, r *rendered) {
		if len(r.services) == 0 {
			t.Fatal("no Service")
		}
		podLabels := r.daemonSet.Spec.Template.Labels
		for _, s := range r.services {
			if s.Spec.ClusterIP == corev1.ClusterIPNone {
				continue // a headless Service is for the peers, not for the agents
			}
			for k, v := range s.Spec.Selector {
				if podLabels[k] != v {
					t.Errorf("Service %s selects %s=%s, the pods have %s=%q", s.Name, k, v, k, podLabels[k])
				}
			}
			if p := s.Spec.InternalTrafficPolicy; p == nil || *p != corev1.ServiceInternalTrafficPolicyLocal {
				t.Errorf("Service %s: internalTrafficPolicy %v, want Local so agents write to the cardinal on their node", s.Name, p)
			}
			for _, sp := range s.Spec.Ports {
				if containerPort(r.cardinal, sp.TargetPort) == 0 {
					t.Errorf("Service %s port %s targets %s, which the cardinal container does not expose", s.Name, sp.Name, sp.TargetPort.String())
				}
			}
		}
	}},
}

// clusterCheck is what makes the DaemonSet a cluster (docs/design.md §5): a headless Service
// that publishes every pod (not-ready ones too: a restarting member must not look gone),
// named by the cluster's DNS discovery, on cardinal's port; the member name from the node
// (the Downward API), never the pod's; and a termination grace period that leaves time to
// send what waits for peers.
var clusterCheck = struct {
	name  string
	check func(t *testing.T, r *rendered)
}{"cluster_peers_by_headless_service_and_node_name", func(t *testing.T, r *rendered) {
	c := r.config.Cluster
	if c == nil {
		t.Fatal("the ConfigMap's configuration has no cluster section: each node's cardinal would aggregate alone")
	}
	var headless *corev1.Service
	for _, s := range r.services {
		if s.Spec.ClusterIP == corev1.ClusterIPNone {
			headless = s
		}
	}
	if headless == nil {
		t.Fatal("no headless Service for the peers")
	}
	if !headless.Spec.PublishNotReadyAddresses {
		t.Errorf("Service %s: publishNotReadyAddresses is false: a restarting member would vanish from DNS", headless.Name)
	}
	if !strings.HasPrefix(c.DNS.Name, headless.Name+".") {
		t.Errorf("cluster.dns.name %q is not the headless Service %s", c.DNS.Name, headless.Name)
	}
	for k, v := range headless.Spec.Selector {
		if r.daemonSet.Spec.Template.Labels[k] != v {
			t.Errorf("Service %s selects %s=%s, which the pods lack", headless.Name, k, v)
		}
	}
	if containerPort(r.cardinal, intstr.FromInt32(int32(c.DNS.Port))) == 0 {
		t.Errorf("cluster.dns.port %d is not a port of the cardinal container", c.DNS.Port)
	}
	nodeName := false
	for _, e := range r.cardinal.Env {
		if e.Name == "NODE_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName" {
			nodeName = true
		}
	}
	if c.Name != "" || !nodeName {
		t.Errorf("the member name must come from $NODE_NAME = spec.nodeName (cluster.name %q, NODE_NAME from the node: %v)", c.Name, nodeName)
	}
	if g := r.daemonSet.Spec.Template.Spec.TerminationGracePeriodSeconds; g == nil || *g < 30 {
		t.Errorf("terminationGracePeriodSeconds %v: too short to send what waits for peers", ptrValue(g))
	}
}}

// TestManifests renders deploy/ and runs every manifest check on it.
func TestManifests(t *testing.T) {
	r := renderDeploy(t)
	for _, c := range append(manifestChecks, clusterCheck) {
		t.Run(c.name, func(t *testing.T) { c.check(t, r) })
	}
}

func ptrValue[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// TestDockerfileFinalImage checks the image the manifests run: a numeric non-root USER
// (runAsNonRoot cannot verify a name) on a distroless base, which carries the CA
// certificates a TLS downstream needs.
func TestDockerfileFinalImage(t *testing.T) {
	from := ""
	for _, line := range strings.Split(string(readFile(t, filepath.Join(repoRoot, "Dockerfile"))), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && strings.EqualFold(f[0], "FROM") {
			from = f[1]
		}
	}
	if !strings.HasPrefix(from, "gcr.io/distroless/static") && !strings.HasPrefix(from, "gcr.io/distroless/base") {
		t.Errorf("final stage FROM %s: not a distroless image, check that it has CA certificates (/etc/ssl/certs) and update this test", from)
	}
	uid, err := strconv.Atoi(dockerfileUser(t))
	if err != nil || uid == 0 {
		t.Errorf("final stage USER %q: want a numeric, non-zero uid", dockerfileUser(t))
	}
}

// containerPort resolves a port by number or name; 0 if the container has no such port.
func containerPort(c *corev1.Container, p intstr.IntOrString) int {
	for _, cp := range c.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return int(cp.ContainerPort)
		}
	}
	return 0
}

// dockerfileUser returns the USER of the Dockerfile's final stage.
func dockerfileUser(t *testing.T) string {
	t.Helper()
	user := ""
	for _, line := range strings.Split(string(readFile(t, filepath.Join(repoRoot, "Dockerfile"))), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && strings.EqualFold(f[0], "FROM") {
			user = ""
		}
		if len(f) >= 2 && strings.EqualFold(f[0], "USER") {
			user, _, _ = strings.Cut(f[1], ":")
		}
	}
	return user
}

// parseByteSize reads cardinal's byte sizes (1GiB, 900MiB, 1048576).
func parseByteSize(s string) (int64, error) {
	m := regexp.MustCompile(`^(\d+)([KMGT]i?B)?$`).FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is not a byte size", s)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, err
	}
	if m[2] != "" {
		q, err := resource.ParseQuantity(m[1] + strings.TrimSuffix(m[2], "B"))
		if err != nil {
			return 0, err
		}
		n = q.Value()
	}
	return n, nil
}

// parseSeconds reads a Go or Prometheus duration in whole units (45s, 2m).
func parseSeconds(s string) (float64, error) {
	m := regexp.MustCompile(`^(\d+)(ms|s|m|h)$`).FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is not a duration", s)
	}
	n, _ := strconv.ParseFloat(m[1], 64)
	return n * map[string]float64{"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m[2]], nil
}

var agentExampleFile = filepath.Join(deployDir, "examples", "prometheus-agent.yaml")

// TestPrometheusAgentExample checks the example agent configuration: a ConfigMap that decodes
// strictly, a prometheus.yml that `promtool check config --agent` accepts, and remote write
// to the remote-write path of the node-local Service that deploy/ defines.
func TestPrometheusAgentExample(t *testing.T) {
	var cm corev1.ConfigMap
	if err := yaml.UnmarshalStrict(readFile(t, agentExampleFile), &cm); err != nil {
		t.Fatalf("%s: %v", agentExampleFile, err)
	}
	config, ok := cm.Data["prometheus.yml"]
	if !ok {
		t.Fatalf("%s: no prometheus.yml", agentExampleFile)
	}
	var prom struct {
		RemoteWrite []struct {
			URL string `json:"url"`
		} `json:"remote_write"`
	}
	if err := yaml.Unmarshal([]byte(config), &prom); err != nil {
		t.Fatal(err)
	}
	if len(prom.RemoteWrite) != 1 {
		t.Fatalf("%d remote_write entries, want the one to cardinal", len(prom.RemoteWrite))
	}
	r := renderDeploy(t)
	var services []string
	for _, s := range r.services {
		if s.Spec.ClusterIP == corev1.ClusterIPNone {
			continue
		}
		for _, p := range s.Spec.Ports {
			for _, host := range []string{s.Name + "." + s.Namespace + ".svc", s.Name + "." + s.Namespace + ".svc.cluster.local"} {
				services = append(services, fmt.Sprintf("http://%s:%d/api/v1/write", host, p.Port))
			}
		}
	}
	if !slices.Contains(services, prom.RemoteWrite[0].URL) {
		t.Errorf("remote_write to %s, which is none of deploy/'s Service endpoints %v", prom.RemoteWrite[0].URL, services)
	}

	promtool := requireTool(t, "promtool", "install it (Debian: apt-get install prometheus) to check the agent configuration")
	out, err := promtoolCheckAgentConfig(t, promtool, config)
	if err != nil && strings.Contains(string(out), "field kubernetes_sd_configs not found") {
		// Debian builds Prometheus without Kubernetes service discovery. Check the
		// kubernetes_sd_configs blocks against the documented fields here, and everything else
		// (relabelling, remote write, agent mode) with promtool, the blocks replaced by a
		// static target.
		t.Logf("this promtool has no Kubernetes service discovery: checking kubernetes_sd_configs here, the rest with promtool")
		out, err = promtoolCheckAgentConfig(t, promtool, withoutKubernetesSD(t, config))
	}
	if err != nil {
		t.Errorf("promtool check config --agent: %v\n%s", err, out)
	}
}

func promtoolCheckAgentConfig(t *testing.T, promtool, config string) ([]byte, error) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "prometheus.yml")
	if err := os.WriteFile(file, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	return exec.Command(promtool, "check", "config", "--agent", file).CombinedOutput()
}

// kubernetesSD is Prometheus's kubernetes_sd_config
// (https://prometheus.io/docs/prometheus/latest/configuration/configuration/#kubernetes_sd_config),
// for a strict check where promtool lacks it.
type kubernetesSD struct {
	Role       string `json:"role"`
	APIServer  string `json:"api_server,omitempty"`
	Namespaces *struct {
		OwnNamespace bool     `json:"own_namespace,omitempty"`
		Names        []string `json:"names,omitempty"`
	} `json:"namespaces,omitempty"`
	Selectors []struct {
		Role  string `json:"role"`
		Label string `json:"label,omitempty"`
		Field string `json:"field,omitempty"`
	} `json:"selectors,omitempty"`
	AttachMetadata *struct {
		Node      bool `json:"node,omitempty"`
		Namespace bool `json:"namespace,omitempty"`
	} `json:"attach_metadata,omitempty"`
	KubeconfigFile string `json:"kubeconfig_file,omitempty"`
}

// withoutKubernetesSD checks each kubernetes_sd_configs block strictly and returns the
// configuration with every such block replaced by a static target.
func withoutKubernetesSD(t *testing.T, config string) string {
	t.Helper()
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(config), &cfg); err != nil {
		t.Fatal(err)
	}
	roles := []string{"node", "pod", "service", "endpoints", "endpointslice", "ingress"}
	for _, sc := range asList(cfg["scrape_configs"]) {
		sc := sc.(map[string]any)
		sds, ok := sc["kubernetes_sd_configs"]
		if !ok {
			continue
		}
		for _, sd := range asList(sds) {
			b, _ := yaml.Marshal(sd)
			var k kubernetesSD
			if err := yaml.UnmarshalStrict(b, &k); err != nil {
				t.Errorf("scrape config %v: kubernetes_sd_configs: %v", sc["job_name"], err)
			}
			if !slices.Contains(roles, k.Role) {
				t.Errorf("scrape config %v: kubernetes_sd_configs role %q, want one of %v", sc["job_name"], k.Role, roles)
			}
		}
		delete(sc, "kubernetes_sd_configs")
		sc["static_configs"] = []any{map[string]any{"targets": []any{"pod.example:9091"}}}
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
