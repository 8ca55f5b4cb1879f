//! The engine's event queue: a binary heap plus a FIFO lane, popped in exactly the heap's order.
//!
//! Most events of a run are frames scheduled one crossing after the current time, so they come
//! in non-decreasing order (an ARP request flooded to 250 ports is 250 events at one instant).
//! An event that is not earlier than the lane's last one joins the lane in O(1); any other (and
//! every timer, which is scheduled far ahead) goes to the heap. Popping takes the smaller of the
//! two fronts, so the order is the total order of the events, as with the heap alone.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// A priority queue of `Ord + Copy` events, smallest first.
#[derive(Debug, Clone)]
pub(crate) struct EventQueue<E: Ord + Copy> {
    heap: BinaryHeap<Reverse<E>>,
    lane: VecDeque<E>,
}

impl<E: Ord + Copy> Default for EventQueue<E> {
    fn default() -> Self {
        Self {
            heap: BinaryHeap::new(),
            lane: VecDeque::new(),
        }
    }
}

impl<E: Ord + Copy> EventQueue<E> {
    /// Adds an event expected to come soon: in the lane when that keeps the lane sorted.
    #[inline]
    pub(crate) fn push(&mut self, event: E) {
        match self.lane.back() {
            Some(last) if *last > event => self.heap.push(Reverse(event)),
            _ => self.lane.push_back(event),
        }
    }

    /// Adds an event scheduled far ahead (a timer): always the heap, so the lane stays usable.
    pub(crate) fn push_far(&mut self, event: E) {
        self.heap.push(Reverse(event));
    }

    /// The smallest event.
    pub(crate) fn peek(&self) -> Option<E> {
        match (self.lane.front(), self.heap.peek()) {
            (Some(a), Some(Reverse(b))) => Some(if a <= b { *a } else { *b }),
            (Some(a), None) => Some(*a),
            (None, Some(Reverse(b))) => Some(*b),
            (None, None) => None,
        }
    }

    /// Removes and returns the smallest event.
    #[inline]
    pub(crate) fn pop(&mut self) -> Option<E> {
        let from_lane = match (self.lane.front(), self.heap.peek()) {
            (Some(a), Some(Reverse(b))) => a <= b,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if from_lane {
            self.lane.pop_front()
        } else {
            self.heap.pop().map(|Reverse(e)| e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any interleaving of pushes (near or far) and pops gives the heap's order.
        #[test]
        fn same_order_as_a_heap(ops in proptest::collection::vec((0u8..4, 0u64..50), 0..300)) {
            let mut queue = EventQueue::default();
            let mut heap = BinaryHeap::new();
            for (seq, (op, at)) in ops.into_iter().enumerate() {
                let event = (at, seq);
                match op {
                    0 => {
                        prop_assert_eq!(queue.pop(), heap.pop().map(|Reverse(e)| e));
                    }
                    1 => {
                        queue.push_far(event);
                        heap.push(Reverse(event));
                    }
                    _ => {
                        queue.push(event);
                        heap.push(Reverse(event));
                    }
                }
                prop_assert_eq!(queue.peek(), heap.peek().map(|Reverse(e)| *e));
            }
            while let Some(Reverse(e)) = heap.pop() {
                prop_assert_eq!(queue.pop(), Some(e));
            }
            prop_assert_eq!(queue.pop(), None);
        }
    }
}
