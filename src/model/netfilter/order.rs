//! The order a rule's match modules were written in. iptables keeps a rule's matches in the
//! order its command line gave them and `iptables-save` prints them so, after `-s`, `-d`,
//! `-i`, `-o` and `-p` (docs/netfilter.md, "Writing iptables-save text"); the model keeps
//! each module in a field of [`super::Match`], so the order is kept beside them, for writing
//! the rule back byte for byte. It changes nothing a rule does: two orders always compare
//! equal, so rules compare by what they match.

/// A match module of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Module {
    Comment = 1,
    /// `-m tcp` (also without options: kube-proxy writes `-m tcp -p tcp -j DNAT`).
    Tcp,
    Udp,
    Multiport,
    /// `-m conntrack` (and `-m state`, read as it).
    Conntrack,
    Mark,
    Connmark,
    Addrtype,
    Iprange,
    Statistic,
    Recent,
}

impl Module {
    const ALL: [Module; 11] = [
        Module::Comment,
        Module::Tcp,
        Module::Udp,
        Module::Multiport,
        Module::Conntrack,
        Module::Mark,
        Module::Connmark,
        Module::Addrtype,
        Module::Iprange,
        Module::Statistic,
        Module::Recent,
    ];

    fn from_code(code: u8) -> Option<Module> {
        Module::ALL.into_iter().find(|m| *m as u8 == code)
    }
}

/// Up to 16 modules in the order written, four bits each; empty when the rule was not read
/// from text (the writer then uses its own order).
#[derive(Debug, Clone, Copy, Default)]
pub struct ModuleOrder(u64);

impl ModuleOrder {
    /// The most modules an order holds; a rule with more keeps the first ones.
    pub const CAPACITY: usize = 16;

    /// Appends `module` unless it is there already or the order is full.
    pub fn push(&mut self, module: Module) {
        let len = self.len();
        if len < Self::CAPACITY && !self.contains(module) {
            self.0 |= u64::from(module as u8) << (4 * len);
        }
    }

    pub fn len(&self) -> usize {
        (0..Self::CAPACITY)
            .take_while(|i| (self.0 >> (4 * i)) & 0xf != 0)
            .count()
    }

    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    pub fn contains(&self, module: Module) -> bool {
        self.iter().any(|m| m == module)
    }

    /// The modules in the order written.
    pub fn iter(&self) -> impl Iterator<Item = Module> + '_ {
        (0..Self::CAPACITY)
            .map(|i| ((self.0 >> (4 * i)) & 0xf) as u8)
            .take_while(|&code| code != 0)
            .filter_map(Module::from_code)
    }
}

/// Presentation only: any two orders are equal.
impl PartialEq for ModuleOrder {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for ModuleOrder {}

impl std::hash::Hash for ModuleOrder {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_come_back_in_the_order_pushed_once_each() {
        let mut o = ModuleOrder::default();
        assert!(o.is_empty());
        o.push(Module::Comment);
        o.push(Module::Addrtype);
        o.push(Module::Tcp);
        o.push(Module::Comment);
        assert_eq!(
            o.iter().collect::<Vec<_>>(),
            [Module::Comment, Module::Addrtype, Module::Tcp]
        );
        assert_eq!(o.len(), 3);
        assert!(o.contains(Module::Tcp) && !o.contains(Module::Udp));
    }

    #[test]
    fn a_full_order_keeps_its_first_sixteen() {
        let mut o = ModuleOrder::default();
        for m in Module::ALL.into_iter().chain(Module::ALL) {
            o.push(m);
        }
        assert_eq!(o.len(), Module::ALL.len());
        assert_eq!(o.iter().collect::<Vec<_>>(), Module::ALL);
    }

    #[test]
    fn orders_never_make_two_rules_differ() {
        let mut a = ModuleOrder::default();
        a.push(Module::Tcp);
        assert_eq!(a, ModuleOrder::default());
    }
}
