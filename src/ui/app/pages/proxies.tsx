/** @module placeholder */
export function ProxiesPage(_props: { selected?: string }) {
  return <p class="empty">Not yet.</p>;
}
