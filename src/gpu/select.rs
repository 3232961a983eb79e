//! Which adapter a request gets: by number, PCI bus id or name, and, when none is named, the
//! GPUs that `CUDA_VISIBLE_DEVICES` or `NVIDIA_VISIBLE_DEVICES` leave visible.
//!
//! Vulkan ignores those variables, so on a multi-GPU node every worker would take the same
//! GPU. divgpu maps the GPUs they name (by index or UUID, as `nvidia-smi` numbers them) to PCI
//! bus ids with `nvidia-smi --query-gpu=index,uuid,pci.bus_id`, and those to Vulkan adapters
//! (`AdapterInfo::device_pci_bus_id`). Where it cannot, it says so in a note and chooses as if
//! the variable were unset.

use crate::error::{Error, Result};
use crate::gpu::context::{adapters, is_hardware};

/// How `--adapter` and `adapter=` name an adapter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    /// The adapter's number in `divgpu devices` (from 0, in the order wgpu lists them).
    Number(usize),
    /// A PCI bus id, as `divgpu devices` and `nvidia-smi` show them.
    Bus(BusId),
    /// A case-insensitive part of the adapter's name.
    Name(String),
}

impl Selector {
    /// A number (all digits), else a PCI bus id, else a part of a name.
    pub fn parse(text: &str) -> Selector {
        let text = text.trim();
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(n) = text.parse() {
                return Selector::Number(n);
            }
        }
        match BusId::parse(text) {
            Some(bus) => Selector::Bus(bus),
            None => Selector::Name(text.to_lowercase()),
        }
    }
}

/// A PCI address: domain, bus, device, function. wgpu writes `0000:01:00.0`, `nvidia-smi`
/// `00000000:01:00.0`; both are the same bus id, and so is `01:00.0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BusId {
    domain: u32,
    bus: u8,
    device: u8,
    function: u8,
}

impl BusId {
    pub fn parse(text: &str) -> Option<BusId> {
        let text = text.trim();
        let (head, function) = text.rsplit_once('.')?;
        let parts: Vec<&str> = head.split(':').collect();
        let (domain, bus, device) = match parts[..] {
            [domain, bus, device] => (domain, bus, device),
            [bus, device] => ("0", bus, device),
            _ => return None,
        };
        let hex = |s: &str, most: usize| {
            (!s.is_empty() && s.len() <= most && s.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| u32::from_str_radix(s, 16).ok())
                .flatten()
        };
        let function = hex(function, 1).filter(|&f| f < 8)?;
        Some(BusId {
            domain: hex(domain, 8)?,
            bus: u8::try_from(hex(bus, 2)?).ok()?,
            device: u8::try_from(hex(device, 2)?).ok().filter(|&d| d < 32)?,
            function: function as u8,
        })
    }
}

impl std::fmt::Display for BusId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{:x}",
            self.domain, self.bus, self.device, self.function
        )
    }
}

/// The adapter chosen, and what the user should know about the choice.
pub struct Choice {
    pub adapter: Option<wgpu::Adapter>,
    pub note: Option<String>,
}

/// Picks an adapter. Named (`adapter`, else `WGPU_ADAPTER_NAME`): by number, bus id or name,
/// whatever it is, and an error when none matches. Otherwise the best by `WGPU_POWER_PREF`
/// (high performance by default) among those `CUDA_VISIBLE_DEVICES`/`NVIDIA_VISIBLE_DEVICES`
/// leave visible, real GPUs only where `hardware_only`; no adapter when none qualifies.
pub fn choose_adapter(
    instance: &wgpu::Instance,
    adapter: Option<&str>,
    hardware_only: bool,
) -> Result<Choice> {
    let env_name = std::env::var("WGPU_ADAPTER_NAME").ok();
    let all = adapters(instance);
    let infos: Vec<wgpu::AdapterInfo> = all.iter().map(|a| a.get_info()).collect();
    if let Some(asked) = adapter.or(env_name.as_deref()) {
        let found = match Selector::parse(asked) {
            Selector::Number(n) => (n < all.len()).then_some(n),
            Selector::Bus(bus) => infos
                .iter()
                .position(|i| BusId::parse(&i.device_pci_bus_id) == Some(bus)),
            Selector::Name(part) => ranked(&infos, (0..infos.len()).collect())
                .into_iter()
                .find(|&k| infos[k].name.to_lowercase().contains(&part)),
        };
        return match found {
            Some(k) => Ok(Choice {
                adapter: all.into_iter().nth(k),
                note: None,
            }),
            None => Err(Error::NoAdapter(format!(
                "no adapter is {asked:?} (by number, PCI bus id or part of the name; adapters \
                 seen: {}); `divgpu devices` lists them",
                seen(&infos)
            ))),
        };
    }
    let candidates: Vec<usize> = (0..infos.len())
        .filter(|&k| !hardware_only || is_hardware(&infos[k]))
        .collect();
    let mut note = None;
    if let Some(visible) = Visible::from_env(|name| std::env::var(name).ok()) {
        let nvidia: Vec<Seen> = candidates.iter().map(|&k| Seen::of(&infos[k])).collect();
        if nvidia.iter().any(|s| s.nvidia) {
            match visible.order(&nvidia, nvidia_smi) {
                Ok(order) => {
                    // the first GPU the variable names, else the best that is not NVIDIA's
                    let order: Vec<usize> = order.into_iter().map(|i| candidates[i]).collect();
                    let first = match order.iter().find(|&&k| infos[k].vendor == NVIDIA_VENDOR) {
                        Some(&k) => Some(k),
                        None => ranked(&infos, order).into_iter().next(),
                    };
                    return Ok(Choice {
                        adapter: first.and_then(|k| all.into_iter().nth(k)),
                        note: None,
                    });
                }
                Err(why) => {
                    note = Some(format!(
                        "{}={:?} is set, but divgpu could not honour it ({why}), so it chose \
                         among every GPU; name one with --adapter (`divgpu devices` lists them)",
                        visible.var, visible.value
                    ))
                }
            }
        }
    }
    let best = ranked(&infos, candidates).into_iter().next();
    Ok(Choice {
        adapter: best.and_then(|k| all.into_iter().nth(k)),
        note,
    })
}

fn seen(infos: &[wgpu::AdapterInfo]) -> String {
    if infos.is_empty() {
        return "none".into();
    }
    infos
        .iter()
        .enumerate()
        .map(|(k, i)| format!("{k}: {}", i.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `candidates` (indices into `infos`), best first by `WGPU_POWER_PREF`; ties keep wgpu's order.
fn ranked(infos: &[wgpu::AdapterInfo], mut candidates: Vec<usize>) -> Vec<usize> {
    let low_power = wgpu::PowerPreference::from_env() == Some(wgpu::PowerPreference::LowPower);
    candidates.sort_by_key(|&k| preference_rank(infos[k].device_type, low_power));
    candidates
}

fn preference_rank(t: wgpu::DeviceType, low_power: bool) -> u8 {
    use wgpu::DeviceType::*;
    match (t, low_power) {
        (DiscreteGpu, false) | (IntegratedGpu, true) => 0,
        (IntegratedGpu, false) | (DiscreteGpu, true) => 1,
        (VirtualGpu, _) => 2,
        (Other, _) => 3,
        (Cpu, _) => 4,
    }
}

/// What [`Visible::order`] needs of an adapter.
#[derive(Clone, Debug)]
struct Seen {
    nvidia: bool,
    bus: Option<BusId>,
}

impl Seen {
    fn of(info: &wgpu::AdapterInfo) -> Seen {
        Seen {
            nvidia: info.vendor == NVIDIA_VENDOR,
            bus: BusId::parse(&info.device_pci_bus_id),
        }
    }
}

const NVIDIA_VENDOR: u32 = 0x10de;

/// The GPUs a CUDA variable leaves visible.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Visible {
    var: &'static str,
    value: String,
    /// Indices (`0`) or UUIDs (`GPU-...`), in order: the first is the one CUDA calls device 0.
    entries: Vec<String>,
}

impl Visible {
    /// `CUDA_VISIBLE_DEVICES`, else `NVIDIA_VISIBLE_DEVICES` (unless `all`): `None` when
    /// neither restricts anything.
    fn from_env(env: impl Fn(&str) -> Option<String>) -> Option<Visible> {
        let (var, value) = match env("CUDA_VISIBLE_DEVICES") {
            Some(v) => ("CUDA_VISIBLE_DEVICES", v),
            None => match env("NVIDIA_VISIBLE_DEVICES") {
                Some(v) if !matches!(v.trim(), "all" | "") => ("NVIDIA_VISIBLE_DEVICES", v),
                _ => return None,
            },
        };
        let entries = match value.trim() {
            "none" | "void" | "NoDevFiles" => vec![],
            list => list
                .split(',')
                .map(str::trim)
                // CUDA stops at the first entry it cannot read
                .take_while(|e| !e.is_empty())
                .map(str::to_string)
                .collect(),
        };
        Some(Visible {
            var,
            value,
            entries,
        })
    }

    /// The order in which to try `adapters` (indices into it): the NVIDIA adapters the
    /// variable names, in its order, then every adapter that is not NVIDIA's, in theirs. `Err`
    /// says why the variable could not be mapped: `nvidia_smi` (its CSV output) failed, an
    /// entry names no GPU it lists, or no NVIDIA adapter has a bus id.
    fn order(
        &self,
        adapters: &[Seen],
        nvidia_smi: impl FnOnce() -> std::result::Result<String, String>,
    ) -> std::result::Result<Vec<usize>, String> {
        if let Some(entry) = self.entries.iter().find(|e| e.starts_with("MIG-")) {
            return Err(format!(
                "{entry} is a MIG instance, which Vulkan does not show as an adapter"
            ));
        }
        // an adapter without a bus id (GL's, say) is never taken for a GPU the variable names
        if !adapters.iter().any(|a| a.nvidia && a.bus.is_some()) {
            return Err("no NVIDIA adapter has a PCI bus id".into());
        }
        let listed = if self.entries.is_empty() {
            vec![]
        } else {
            parse_smi(&nvidia_smi()?)?
        };
        let mut order = vec![];
        for entry in &self.entries {
            let gpu = listed
                .iter()
                .find(|(index, uuid, _)| {
                    entry == index || (entry.starts_with("GPU-") && uuid.starts_with(entry))
                })
                .ok_or_else(|| format!("nvidia-smi lists no GPU {entry}"))?;
            if let Some(k) = adapters
                .iter()
                .position(|a| a.nvidia && a.bus == Some(gpu.2))
            {
                if !order.contains(&k) {
                    order.push(k);
                }
            }
        }
        order.extend((0..adapters.len()).filter(|&k| !adapters[k].nvidia));
        Ok(order)
    }
}

/// `nvidia-smi --query-gpu=index,uuid,pci.bus_id --format=csv,noheader`'s output.
fn nvidia_smi() -> std::result::Result<String, String> {
    let output = std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=index,uuid,pci.bus_id", "--format=csv,noheader"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("nvidia-smi could not run: {e}"))?;
    if !output.status.success() {
        return Err(format!("nvidia-smi failed ({})", output.status));
    }
    String::from_utf8(output.stdout).map_err(|_| "nvidia-smi wrote something not UTF-8".into())
}

/// Lines of `index, uuid, bus id`.
fn parse_smi(csv: &str) -> std::result::Result<Vec<(String, String, BusId)>, String> {
    csv.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            match fields[..] {
                [index, uuid, bus] => BusId::parse(bus)
                    .map(|b| (index.to_string(), uuid.to_string(), b))
                    .ok_or_else(|| {
                        format!("nvidia-smi printed a bus id divgpu cannot read: {bus}")
                    }),
                _ => Err(format!(
                    "nvidia-smi printed a line divgpu cannot read: {line}"
                )),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_are_numbers_bus_ids_or_names() {
        assert_eq!(Selector::parse("0"), Selector::Number(0));
        assert_eq!(Selector::parse(" 12 "), Selector::Number(12));
        let bus = BusId::parse("0000:01:00.0").unwrap();
        for text in [
            "0000:01:00.0",
            "00000000:01:00.0",
            "01:00.0",
            "0000:01:00.0 ",
        ] {
            assert_eq!(Selector::parse(text), Selector::Bus(bus), "{text}");
        }
        assert_eq!(bus.to_string(), "0000:01:00.0");
        assert_eq!(
            BusId::parse("0001:C1:1f.7").unwrap().to_string(),
            "0001:c1:1f.7"
        );
        for name in [
            "llvmpipe",
            "NVIDIA H100",
            "01:00",
            "0:0:0",
            "01:20.0",
            "01:00.8",
            "1e",
        ] {
            assert_eq!(
                Selector::parse(name),
                Selector::Name(name.to_lowercase()),
                "{name}"
            );
        }
    }

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    const SMI: &str = "0, GPU-aaaa1111-2222, 00000000:18:00.0\n\
                       1, GPU-bbbb1111-2222, 00000000:3B:00.0\n\
                       2, GPU-cccc1111-2222, 00000000:86:00.0\n";

    fn nvidia(bus: &str) -> Seen {
        Seen {
            nvidia: true,
            bus: BusId::parse(bus),
        }
    }

    #[test]
    fn cuda_visible_devices_orders_the_nvidia_adapters_it_names() {
        assert_eq!(Visible::from_env(env(&[])), None);
        assert_eq!(
            Visible::from_env(env(&[("NVIDIA_VISIBLE_DEVICES", "all")])),
            None
        );
        // as Vulkan lists them: two NVIDIA GPUs out of PCI order, a software adapter
        let adapters = [
            nvidia("0000:86:00.0"),
            Seen {
                nvidia: false,
                bus: None,
            },
            nvidia("0000:18:00.0"),
            nvidia("0000:3b:00.0"),
        ];
        let order = |vars: &[(&str, &str)]| {
            Visible::from_env(env(vars))
                .unwrap()
                .order(&adapters, || Ok(SMI.to_string()))
        };
        // by index, by UUID (a prefix, as CUDA takes), with spaces; the others are not NVIDIA's
        assert_eq!(order(&[("CUDA_VISIBLE_DEVICES", "2")]), Ok(vec![0, 1]));
        assert_eq!(
            order(&[("CUDA_VISIBLE_DEVICES", "1, 0")]),
            Ok(vec![3, 2, 1])
        );
        assert_eq!(
            order(&[("CUDA_VISIBLE_DEVICES", "GPU-cccc,GPU-aaaa1111-2222")]),
            Ok(vec![0, 2, 1])
        );
        // CUDA's own variable wins over the container's
        assert_eq!(
            order(&[
                ("NVIDIA_VISIBLE_DEVICES", "0"),
                ("CUDA_VISIBLE_DEVICES", "1")
            ]),
            Ok(vec![3, 1])
        );
        assert_eq!(order(&[("NVIDIA_VISIBLE_DEVICES", "0")]), Ok(vec![2, 1]));
        // none visible: only adapters that are not NVIDIA's
        assert_eq!(order(&[("CUDA_VISIBLE_DEVICES", "")]), Ok(vec![1]));
        assert_eq!(order(&[("NVIDIA_VISIBLE_DEVICES", "none")]), Ok(vec![1]));
        // CUDA stops at the first entry it cannot read
        assert_eq!(order(&[("CUDA_VISIBLE_DEVICES", "1,,0")]), Ok(vec![3, 1]));
        // what cannot be mapped says why
        let why = |vars: &[(&str, &str)]| order(vars).unwrap_err();
        assert!(why(&[("CUDA_VISIBLE_DEVICES", "7")]).contains("no GPU 7"));
        assert!(why(&[("CUDA_VISIBLE_DEVICES", "MIG-1234")]).contains("MIG"));
        let no_smi = Visible::from_env(env(&[("CUDA_VISIBLE_DEVICES", "0")]))
            .unwrap()
            .order(&adapters, || {
                Err("nvidia-smi could not run: not found".into())
            })
            .unwrap_err();
        assert!(no_smi.contains("nvidia-smi could not run"), "{no_smi}");
        let no_bus = Visible::from_env(env(&[("CUDA_VISIBLE_DEVICES", "0")]))
            .unwrap()
            .order(&[nvidia("")], || Ok(SMI.to_string()))
            .unwrap_err();
        assert!(no_bus.contains("has a PCI bus id"), "{no_bus}");
        assert!(parse_smi("0, GPU-1, not a bus").is_err());
    }
}
