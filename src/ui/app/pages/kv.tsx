/** @module placeholder */
export function KvPage(_props: { selected?: string }) {
  return <p class="empty">Not yet.</p>;
}
